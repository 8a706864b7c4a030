//! IPMI over LAN as received from a BMC: RMCP/RMCP+ packets (outside and
//! inside a session: integrity and confidentiality trailers), IPMI
//! message framing, and the decoders of command responses (device id,
//! SEL entries, FRU, SDR sensor records, readings, thresholds).
#![no_main]
use certlab_lab::bmc::ipmi::codec;
use certlab_lab::bmc::ipmi::session::{self, CipherSuite, Keys};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let suite = if sel & 1 == 0 {
        CipherSuite::Cs3
    } else {
        CipherSuite::Cs17
    };
    let keys = Keys::derive(suite, b"fuzz session integrity key", 0x0a0b0c0d, 0x01020304);
    // Packets as they come off the wire, with and without a session.
    let _ = session::decode(None, rest);
    let _ = session::decode(Some(&keys), rest);
    // The same bytes as the payload of a genuine session packet: what the
    // decoders behind decryption see.
    let packet = session::encode_secure(&keys, sel & 0x3f, 1, rest, [sel; 16]);
    let back = session::decode(Some(&keys), &packet);
    assert_eq!(back.map(|p| p.payload).as_deref(), Ok(rest), "round trip");
    if let Ok((_, _, _, _, body)) = session::ipmi_response(rest) {
        let _ = codec::device_id(&body);
    }
    let _ = codec::device_id(rest);
    let _ = codec::sel_entry(rest);
    let _ = certlab_lab::bmc::ipmi::decode_sel_record(rest);
    let _ = codec::fru(rest);
    if let Ok(Some(rec)) = codec::sensor_record(rest) {
        if let Some(conv) = &rec.conversion {
            for raw in [0u8, 1, 0x7f, 0x80, 0xff] {
                let _ = conv.value(raw);
            }
            let _ = codec::thresholds(rest, conv);
        }
    }
    let _ = codec::reading(rest);
    let _ = codec::sensor_type_name(sel);
    let _ = session::rakp_status(sel);
});

//! The RMCP+ session layer: Open Session, RAKP 1–4, integrity, confidentiality,
//! and the UDP exchange of IPMI and SOL payloads.
//!
//! Packet building and parsing are pure functions over a [`Keys`] value so
//! they can be unit-tested without a socket; [`Session`] adds the socket,
//! sequence numbers and retransmission.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use tokio::net::UdpSocket;

use crate::inventory::Secret;

/// An RMCP+ cipher suite: authentication, integrity and confidentiality
/// algorithms negotiated in Open Session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherSuite {
    /// RAKP-HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128. What every BMC offers.
    Cs3,
    /// RAKP-HMAC-SHA256, HMAC-SHA256-128, AES-CBC-128. Newer BMCs; not
    /// offered by OpenIPMI's `ipmi_sim`.
    Cs17,
}

impl CipherSuite {
    pub fn id(self) -> u8 {
        match self {
            CipherSuite::Cs3 => 3,
            CipherSuite::Cs17 => 17,
        }
    }

    fn auth_alg(self) -> u8 {
        match self {
            CipherSuite::Cs3 => 0x01,
            CipherSuite::Cs17 => 0x03,
        }
    }

    fn integrity_alg(self) -> u8 {
        match self {
            CipherSuite::Cs3 => 0x01,
            CipherSuite::Cs17 => 0x04,
        }
    }

    /// Length of the RAKP 2/3 key exchange authentication code.
    fn rakp_len(self) -> usize {
        match self {
            CipherSuite::Cs3 => 20,
            CipherSuite::Cs17 => 32,
        }
    }

    /// Length of the RAKP 4 integrity check value and of each packet's
    /// AuthCode.
    fn icv_len(self) -> usize {
        match self {
            CipherSuite::Cs3 => 12,
            CipherSuite::Cs17 => 16,
        }
    }

    fn hmac(self, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        // HMAC accepts keys of any length: `new_from_slice` cannot fail.
        match self {
            CipherSuite::Cs3 => match Hmac::<sha1::Sha1>::new_from_slice(key) {
                Ok(mut mac) => {
                    parts.iter().for_each(|p| mac.update(p));
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            CipherSuite::Cs17 => match Hmac::<sha2::Sha256>::new_from_slice(key) {
                Ok(mut mac) => {
                    parts.iter().for_each(|p| mac.update(p));
                    mac.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }
}

/// Payload types of the RMCP+ session header.
pub const PAYLOAD_IPMI: u8 = 0x00;
pub const PAYLOAD_SOL: u8 = 0x01;
const PAYLOAD_OPEN_REQ: u8 = 0x10;
const PAYLOAD_OPEN_RESP: u8 = 0x11;
const PAYLOAD_RAKP1: u8 = 0x12;
const PAYLOAD_RAKP2: u8 = 0x13;
const PAYLOAD_RAKP3: u8 = 0x14;
const PAYLOAD_RAKP4: u8 = 0x15;

/// Privilege level ADMINISTRATOR.
pub const PRIV_ADMIN: u8 = 0x04;

/// Why a session operation failed, before it is classified as a
/// [`super::super::BmcError`].
#[derive(Debug)]
pub enum SessionError {
    /// No (valid) answer within the time allowed. `refused` when the host
    /// said the port is unreachable.
    Timeout { what: String, refused: bool },
    /// The BMC rejected our credentials (RAKP status or a key exchange code
    /// that does not verify).
    Auth(String),
    /// The BMC does not offer the requested cipher suite.
    CipherRejected { suite: CipherSuite, status: u8 },
    /// The BMC is out of sessions or resources.
    Busy(String),
    /// Anything we cannot make sense of.
    Protocol(String),
    /// Socket errors other than timeouts.
    Io(std::io::Error),
}

/// Session keys and identifiers after RAKP.
#[derive(Clone)]
pub struct Keys {
    pub suite: CipherSuite,
    /// The BMC's session id (what we put in outgoing packets).
    pub bmc_sid: u32,
    /// Our session id (what the BMC puts in its packets).
    pub console_sid: u32,
    k1: Vec<u8>,
    k2: [u8; 16],
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("suite", &self.suite)
            .field("bmc_sid", &format_args!("{:#010x}", self.bmc_sid))
            .field("console_sid", &format_args!("{:#010x}", self.console_sid))
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Derives K1/K2 from the session integrity key.
    pub fn derive(suite: CipherSuite, sik: &[u8], bmc_sid: u32, console_sid: u32) -> Keys {
        let k1 = suite.hmac(sik, &[&[0x01; 20]]);
        let k2_full = suite.hmac(sik, &[&[0x02; 20]]);
        let mut k2 = [0u8; 16];
        let n = k2_full.len().min(16);
        k2[..n].copy_from_slice(&k2_full[..n]);
        Keys {
            suite,
            bmc_sid,
            console_sid,
            k1,
            k2,
        }
    }
}

const RMCP_HEADER: [u8; 4] = [0x06, 0x00, 0xFF, 0x07];

/// A packet before authentication: Open Session and RAKP messages.
pub fn encode_unauthenticated(payload_type: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(16 + payload.len());
    p.extend_from_slice(&RMCP_HEADER);
    p.push(0x06); // auth type: RMCP+
    p.push(payload_type);
    p.extend_from_slice(&0u32.to_le_bytes()); // session id
    p.extend_from_slice(&0u32.to_le_bytes()); // session sequence
    p.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    p.extend_from_slice(payload);
    p
}

/// An encrypted, authenticated packet in an established session.
pub fn encode_secure(
    keys: &Keys,
    payload_type: u8,
    seq: u32,
    payload: &[u8],
    iv: [u8; 16],
) -> Vec<u8> {
    // Confidentiality: IV, then AES-CBC-128 of payload + pad 1,2,3… + pad length.
    let pad = (16 - (payload.len() + 1) % 16) % 16;
    let mut plain = Vec::with_capacity(payload.len() + pad + 1);
    plain.extend_from_slice(payload);
    for i in 1..=pad {
        plain.push(i as u8);
    }
    plain.push(pad as u8);
    let enc = cbc::Encryptor::<aes::Aes128>::new(&keys.k2.into(), &iv.into());
    let n = plain.len();
    // `plain` is a whole number of blocks, so NoPadding cannot fail.
    let cipher = enc
        .encrypt_padded_mut::<aes::cipher::block_padding::NoPadding>(&mut plain, n)
        .unwrap_or_default();
    let mut body = Vec::with_capacity(16 + cipher.len());
    body.extend_from_slice(&iv);
    body.extend_from_slice(cipher);

    let mut p = Vec::with_capacity(body.len() + 40);
    p.extend_from_slice(&RMCP_HEADER);
    p.push(0x06);
    p.push(0xC0 | payload_type); // encrypted + authenticated
    p.extend_from_slice(&keys.bmc_sid.to_le_bytes());
    p.extend_from_slice(&seq.to_le_bytes());
    p.extend_from_slice(&(body.len() as u16).to_le_bytes());
    p.extend_from_slice(&body);
    // Integrity pad so that auth type .. next header is a multiple of 4.
    let covered = p.len() - RMCP_HEADER.len() + 2;
    let ipad = (4 - covered % 4) % 4;
    p.extend(std::iter::repeat_n(0xFF, ipad));
    p.push(ipad as u8);
    p.push(0x07); // next header
    let mac = keys.suite.hmac(&keys.k1, &[&p[RMCP_HEADER.len()..]]);
    p.extend_from_slice(&mac[..keys.suite.icv_len()]);
    p
}

/// A packet received from the BMC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub payload_type: u8,
    pub session_id: u32,
    pub payload: Vec<u8>,
}

/// Parses (and, in a session, verifies and decrypts) a packet.
pub fn decode(keys: Option<&Keys>, packet: &[u8]) -> Result<Incoming, String> {
    if packet.len() < 4 || packet[0] != 0x06 || packet[3] != 0x07 {
        return Err("not an RMCP IPMI packet".into());
    }
    let s = &packet[4..];
    if s.is_empty() {
        return Err("empty session header".into());
    }
    if s[0] != 0x06 {
        // IPMI 1.5 session: only error answers come this way.
        return Err(format!(
            "unexpected IPMI 1.5 packet (auth type {:#04x})",
            s[0]
        ));
    }
    if s.len() < 12 {
        return Err("short RMCP+ session header".into());
    }
    let ptype = s[1];
    let encrypted = ptype & 0x80 != 0;
    let authenticated = ptype & 0x40 != 0;
    let payload_type = ptype & 0x3F;
    let session_id = u32::from_le_bytes([s[2], s[3], s[4], s[5]]);
    let len = u16::from_le_bytes([s[10], s[11]]) as usize;
    let end = 12 + len;
    if s.len() < end {
        return Err("payload longer than packet".into());
    }
    let body = &s[12..end];
    if authenticated {
        let keys = keys.ok_or("authenticated packet outside a session")?;
        let icv = keys.suite.icv_len();
        if s.len() < end + 2 + icv {
            return Err("short integrity trailer".into());
        }
        let covered = &s[..s.len() - icv];
        let mac = keys.suite.hmac(&keys.k1, &[covered]);
        if mac.get(..icv) != Some(&s[s.len() - icv..]) {
            return Err("integrity check failed".into());
        }
    }
    let payload = if encrypted {
        let keys = keys.ok_or("encrypted packet outside a session")?;
        if body.len() < 32 || body.len() % 16 != 0 {
            return Err("bad encrypted payload length".into());
        }
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&body[..16]);
        let dec = cbc::Decryptor::<aes::Aes128>::new(&keys.k2.into(), &iv.into());
        let mut buf = body[16..].to_vec();
        let plain = dec
            .decrypt_padded_mut::<aes::cipher::block_padding::NoPadding>(&mut buf)
            .map_err(|_| "decryption failed".to_string())?;
        let pad = *plain.last().ok_or("empty plaintext")? as usize;
        if pad + 1 > plain.len() {
            return Err("bad confidentiality pad".into());
        }
        plain[..plain.len() - pad - 1].to_vec()
    } else {
        body.to_vec()
    };
    Ok(Incoming {
        payload_type,
        session_id,
        payload,
    })
}

/// Two's complement checksum of IPMI messages.
pub fn checksum(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |a, b| a.wrapping_add(*b))
        .wrapping_neg()
}

/// An IPMI request message (LAN format) addressed to the BMC.
pub fn ipmi_request(netfn: u8, cmd: u8, rq_seq: u8, data: &[u8]) -> Vec<u8> {
    let mut m = vec![0x20, netfn << 2];
    m.push(checksum(&m));
    let tail_start = m.len();
    m.extend_from_slice(&[0x81, rq_seq << 2, cmd]);
    m.extend_from_slice(data);
    let c = checksum(&m[tail_start..]);
    m.push(c);
    m
}

/// An IPMI response: `(netfn, rq_seq, cmd, completion code, data)`.
pub fn ipmi_response(m: &[u8]) -> Result<(u8, u8, u8, u8, Vec<u8>), String> {
    if m.len() < 8 {
        return Err(format!("short IPMI response ({} bytes)", m.len()));
    }
    if checksum(&m[..2]) != m[2] || checksum(&m[3..m.len() - 1]) != m[m.len() - 1] {
        return Err("IPMI response checksum mismatch".into());
    }
    Ok((m[1] >> 2, m[4] >> 2, m[5], m[6], m[7..m.len() - 1].to_vec()))
}

/// Everything needed to open a session.
#[derive(Debug, Clone)]
pub struct Login {
    pub addr: SocketAddr,
    pub username: String,
    pub password: Secret,
    pub suite: CipherSuite,
    /// Bound on one request/response exchange (all retransmissions).
    pub timeout: Duration,
    /// Wait this long for an answer before sending again.
    pub retransmit: Duration,
}

/// An established RMCP+ session over UDP.
pub struct Session {
    sock: UdpSocket,
    keys: Keys,
    seq: u32,
    rq_seq: u8,
    timeout: Duration,
    retransmit: Duration,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

/// Sends `packet` and waits for a reply that `accept` takes, resending every
/// `retransmit` until `timeout`.
async fn exchange<T>(
    sock: &UdpSocket,
    what: &str,
    timeout: Duration,
    retransmit: Duration,
    mut make: impl FnMut() -> Vec<u8>,
    mut accept: impl FnMut(&[u8]) -> Option<T>,
) -> Result<T, SessionError> {
    let deadline = Instant::now() + timeout;
    let mut refused = false;
    let mut buf = vec![0u8; 2048];
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(SessionError::Timeout {
                what: what.to_string(),
                refused,
            });
        }
        let packet = make();
        match sock.send(&packet).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => refused = true,
            Err(e) => return Err(SessionError::Io(e)),
        }
        let resend_at = (Instant::now() + retransmit).min(deadline);
        loop {
            let now = Instant::now();
            if now >= resend_at {
                break;
            }
            match tokio::time::timeout(resend_at - now, sock.recv(&mut buf)).await {
                Err(_) => break,
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    // ICMP port unreachable: nobody listens (yet). Keep
                    // trying until the deadline, like a BMC that is rebooting.
                    refused = true;
                    tokio::time::sleep((resend_at - Instant::now()).min(retransmit)).await;
                    break;
                }
                Ok(Err(e)) => return Err(SessionError::Io(e)),
                Ok(Ok(n)) => {
                    if let Some(v) = accept(&buf[..n]) {
                        return Ok(v);
                    }
                }
            }
        }
    }
}

impl Session {
    /// Opens a session: Open Session, RAKP 1–4, then Set Session Privilege
    /// Level ADMINISTRATOR (without which chassis commands fail with 0xD4).
    pub async fn open(login: &Login) -> Result<Session, SessionError> {
        let bind: SocketAddr = if login.addr.is_ipv4() {
            SocketAddr::from(([0, 0, 0, 0], 0))
        } else {
            SocketAddr::from(([0u16; 8], 0))
        };
        let sock = UdpSocket::bind(bind).await.map_err(SessionError::Io)?;
        sock.connect(login.addr).await.map_err(SessionError::Io)?;
        let suite = login.suite;
        let console_sid = u32::from_le_bytes(random::<4>()) | 1;
        let tag = random::<1>()[0];

        // Open Session.
        let mut open = vec![tag, PRIV_ADMIN, 0, 0];
        open.extend_from_slice(&console_sid.to_le_bytes());
        open.extend_from_slice(&[0x00, 0, 0, 0x08, suite.auth_alg(), 0, 0, 0]);
        open.extend_from_slice(&[0x01, 0, 0, 0x08, suite.integrity_alg(), 0, 0, 0]);
        open.extend_from_slice(&[0x02, 0, 0, 0x08, 0x01, 0, 0, 0]);
        let open_packet = encode_unauthenticated(PAYLOAD_OPEN_REQ, &open);
        let resp = exchange(
            &sock,
            "open session",
            login.timeout,
            login.retransmit,
            || open_packet.clone(),
            |p| {
                let m = decode(None, p).ok()?;
                (m.payload_type == PAYLOAD_OPEN_RESP && m.payload.first() == Some(&tag))
                    .then_some(m.payload)
            },
        )
        .await?;
        if resp.len() < 2 {
            return Err(SessionError::Protocol("short open session response".into()));
        }
        match resp[1] {
            0 => {}
            s @ (0x04..=0x07 | 0x10 | 0x11) => {
                return Err(SessionError::CipherRejected { suite, status: s })
            }
            s @ (0x01 | 0x0B) => {
                return Err(SessionError::Busy(format!(
                    "open session refused: {}",
                    rakp_status(s)
                )))
            }
            s => {
                return Err(SessionError::Protocol(format!(
                    "open session refused: {}",
                    rakp_status(s)
                )))
            }
        }
        if resp.len() < 36 {
            return Err(SessionError::Protocol("short open session response".into()));
        }
        if resp[16] != suite.auth_alg() || resp[24] != suite.integrity_alg() || resp[32] != 0x01 {
            return Err(SessionError::CipherRejected {
                suite,
                status: 0x11,
            });
        }
        let bmc_sid = u32::from_le_bytes([resp[8], resp[9], resp[10], resp[11]]);

        // RAKP 1.
        let rm = random::<16>();
        let role = PRIV_ADMIN | 0x10; // name-only lookup
        let user = login.username.as_bytes();
        if user.len() > 16 {
            return Err(SessionError::Auth("user name longer than 16 bytes".into()));
        }
        let tag = tag.wrapping_add(1);
        let mut r1 = vec![tag, 0, 0, 0];
        r1.extend_from_slice(&bmc_sid.to_le_bytes());
        r1.extend_from_slice(&rm);
        r1.extend_from_slice(&[role, 0, 0, user.len() as u8]);
        r1.extend_from_slice(user);
        let r1_packet = encode_unauthenticated(PAYLOAD_RAKP1, &r1);
        let r2 = exchange(
            &sock,
            "rakp 1",
            login.timeout,
            login.retransmit,
            || r1_packet.clone(),
            |p| {
                let m = decode(None, p).ok()?;
                (m.payload_type == PAYLOAD_RAKP2 && m.payload.first() == Some(&tag))
                    .then_some(m.payload)
            },
        )
        .await?;
        if r2.len() < 2 {
            return Err(SessionError::Protocol("short rakp 2".into()));
        }
        if r2[1] != 0 {
            return Err(rakp_error("rakp 2", r2[1]));
        }
        let klen = suite.rakp_len();
        if r2.len() < 40 + klen {
            return Err(SessionError::Protocol("short rakp 2".into()));
        }
        let rc = &r2[8..24];
        let guid = &r2[24..40];
        let kuid = login.password.expose().as_bytes();
        let sid_m = console_sid.to_le_bytes();
        let sid_c = bmc_sid.to_le_bytes();
        let ulen = [user.len() as u8];
        let expect = suite.hmac(kuid, &[&sid_m, &sid_c, &rm, rc, guid, &[role], &ulen, user]);
        if !ct_eq(&expect, &r2[40..40 + klen]) {
            return Err(SessionError::Auth(
                "the bmc's key exchange code does not verify: wrong password".into(),
            ));
        }
        let sik = suite.hmac(kuid, &[&rm, rc, &[role], &ulen, user]);

        // RAKP 3.
        let code = suite.hmac(kuid, &[rc, &sid_m, &[role], &ulen, user]);
        let tag = tag.wrapping_add(1);
        let mut r3 = vec![tag, 0, 0, 0];
        r3.extend_from_slice(&sid_c);
        r3.extend_from_slice(&code);
        let r3_packet = encode_unauthenticated(PAYLOAD_RAKP3, &r3);
        let r4 = exchange(
            &sock,
            "rakp 3",
            login.timeout,
            login.retransmit,
            || r3_packet.clone(),
            |p| {
                let m = decode(None, p).ok()?;
                (m.payload_type == PAYLOAD_RAKP4 && m.payload.first() == Some(&tag))
                    .then_some(m.payload)
            },
        )
        .await?;
        if r4.len() < 2 {
            return Err(SessionError::Protocol("short rakp 4".into()));
        }
        if r4[1] != 0 {
            return Err(rakp_error("rakp 4", r4[1]));
        }
        let icv = suite.icv_len();
        let expect = suite.hmac(&sik, &[&rm, &sid_c, guid]);
        if r4.len() < 8 + icv || !ct_eq(&expect[..icv], &r4[8..8 + icv]) {
            return Err(SessionError::Auth(
                "rakp 4 integrity check does not verify".into(),
            ));
        }

        let keys = Keys::derive(suite, &sik, bmc_sid, console_sid);
        let mut session = Session {
            sock,
            keys,
            seq: 0,
            rq_seq: 0,
            timeout: login.timeout,
            retransmit: login.retransmit,
        };
        // Set Session Privilege Level: ADMINISTRATOR.
        let (cc, _) = session.command(0x06, 0x3B, &[PRIV_ADMIN]).await?;
        if cc != 0 {
            return Err(SessionError::Auth(format!(
                "set session privilege level administrator refused (completion code {cc:#04x})"
            )));
        }
        Ok(session)
    }

    pub fn suite(&self) -> CipherSuite {
        self.keys.suite
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        if self.seq == 0 {
            self.seq = 1;
        }
        self.seq
    }

    /// Sends one IPMI command and returns `(completion code, data)`.
    pub async fn command(
        &mut self,
        netfn: u8,
        cmd: u8,
        data: &[u8],
    ) -> Result<(u8, Vec<u8>), SessionError> {
        self.rq_seq = (self.rq_seq + 1) & 0x3F;
        let rq_seq = self.rq_seq;
        let msg = ipmi_request(netfn, cmd, rq_seq, data);
        let keys = self.keys.clone();
        let mut seq = self.seq;
        let timeout = self.timeout;
        let retransmit = self.retransmit;
        let what = format!("netfn {netfn:#04x} cmd {cmd:#04x}");
        let result = exchange(
            &self.sock,
            &what,
            timeout,
            retransmit,
            || {
                seq = seq.wrapping_add(1).max(1);
                encode_secure(&keys, PAYLOAD_IPMI, seq, &msg, random::<16>())
            },
            |p| {
                let m = decode(Some(&keys), p).ok()?;
                if m.payload_type != PAYLOAD_IPMI || m.session_id != keys.console_sid {
                    return None;
                }
                let (rnetfn, rseq, rcmd, cc, data) = ipmi_response(&m.payload).ok()?;
                (rnetfn == netfn + 1 && rseq == rq_seq && rcmd == cmd).then_some((cc, data))
            },
        )
        .await;
        self.seq = seq;
        result
    }

    /// Sends a SOL payload (no answer expected at this layer).
    pub async fn send_sol(&mut self, payload: &[u8]) -> Result<(), SessionError> {
        let seq = self.next_seq();
        let p = encode_secure(&self.keys, PAYLOAD_SOL, seq, payload, random::<16>());
        self.sock.send(&p).await.map_err(SessionError::Io)?;
        Ok(())
    }

    /// Waits up to `wait` for the next SOL payload from the BMC; `None` on
    /// timeout. Packets of other types are dropped.
    pub async fn recv_sol(&mut self, wait: Duration) -> Result<Option<Vec<u8>>, SessionError> {
        let deadline = Instant::now() + wait;
        let mut buf = vec![0u8; 2048];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            match tokio::time::timeout(deadline - now, self.sock.recv(&mut buf)).await {
                Err(_) => return Ok(None),
                Ok(Err(e)) => return Err(SessionError::Io(e)),
                Ok(Ok(n)) => {
                    if let Ok(m) = decode(Some(&self.keys), &buf[..n]) {
                        if m.payload_type == PAYLOAD_SOL && m.session_id == self.keys.console_sid {
                            return Ok(Some(m.payload));
                        }
                    }
                }
            }
        }
    }

    /// Close Session; errors are ignored (the BMC times sessions out anyway).
    pub async fn close(mut self) {
        let sid = self.keys.bmc_sid.to_le_bytes();
        let save = self.timeout;
        self.timeout = self.retransmit.min(save);
        let _ = self.command(0x06, 0x3C, &sid).await;
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn rakp_error(step: &str, status: u8) -> SessionError {
    let text = format!("{step}: {}", rakp_status(status));
    match status {
        0x01 | 0x0B => SessionError::Busy(text),
        0x09 | 0x0A | 0x0C | 0x0D | 0x0E | 0x0F => SessionError::Auth(text),
        _ => SessionError::Protocol(text),
    }
}

/// RMCP+ and RAKP message status codes (IPMI 2.0 table 13-15).
pub fn rakp_status(code: u8) -> String {
    let s = match code {
        0x00 => "no errors",
        0x01 => "insufficient resources to create a session",
        0x02 => "invalid session id",
        0x03 => "invalid payload type",
        0x04 => "invalid authentication algorithm",
        0x05 => "invalid integrity algorithm",
        0x06 => "no matching authentication payload",
        0x07 => "no matching integrity payload",
        0x08 => "inactive session id",
        0x09 => "invalid role",
        0x0A => "unauthorized role or privilege level requested",
        0x0B => "insufficient resources to create a session at the requested role",
        0x0C => "invalid name length",
        0x0D => "unauthorized name",
        0x0E => "unauthorized guid",
        0x0F => "invalid integrity check value",
        0x10 => "invalid confidentiality algorithm",
        0x11 => "no cipher suite match with proposed security algorithms",
        0x12 => "illegal or unrecognized parameter",
        _ => "unknown status",
    };
    format!("{s} (status {code:#04x})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(suite: CipherSuite) -> Keys {
        Keys::derive(suite, &[7u8; 20], 0x11223344, 0x55667788)
    }

    #[test]
    fn ipmi_message_round_trip() {
        let m = ipmi_request(0x06, 0x01, 5, &[]);
        assert_eq!(m[0], 0x20);
        assert_eq!(checksum(&m[..2]), m[2]);
        // A response to it, as a BMC would build it.
        let mut r = vec![0x81, (0x07) << 2];
        r.push(checksum(&r));
        let tail = r.len();
        r.extend_from_slice(&[0x20, 5 << 2, 0x01, 0x00, 0xAA, 0xBB]);
        let c = checksum(&r[tail..]);
        r.push(c);
        assert_eq!(ipmi_response(&r), Ok((0x07, 5, 0x01, 0, vec![0xAA, 0xBB])));
        r[7] ^= 1;
        assert!(ipmi_response(&r).is_err());
    }

    #[test]
    fn secure_packets_round_trip_for_both_suites() {
        for suite in [CipherSuite::Cs3, CipherSuite::Cs17] {
            let k = keys(suite);
            for len in [0usize, 1, 15, 16, 17, 40] {
                let payload: Vec<u8> = (0..len as u8).collect();
                let p = encode_secure(&k, PAYLOAD_SOL, 9, &payload, [3u8; 16]);
                // Integrity-covered part is a multiple of 4.
                let covered = p.len() - 4 - k.suite.icv_len();
                assert_eq!(covered % 4, 0, "suite {suite:?} len {len}");
                let back = decode(Some(&k), &p).map_err(|e| e.to_string());
                assert_eq!(
                    back,
                    Ok(Incoming {
                        payload_type: PAYLOAD_SOL,
                        session_id: k.bmc_sid,
                        payload
                    })
                );
                let mut bad = p.clone();
                let i = bad.len() - 1;
                bad[i] ^= 0x80;
                assert!(decode(Some(&k), &bad).is_err());
            }
        }
    }

    #[test]
    fn hmac_matches_rfc_vectors() {
        // RFC 2202 test case 2 (HMAC-SHA1) and RFC 4231 test case 2 (SHA-256).
        let sha1 = CipherSuite::Cs3.hmac(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex::encode(sha1),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
        let sha256 = CipherSuite::Cs17.hmac(b"Jefe", &[b"what do ya want for nothing?"]);
        assert_eq!(
            hex::encode(sha256),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn keys_debug_hides_key_material() {
        let k = keys(CipherSuite::Cs3);
        let s = format!("{k:?}");
        assert!(s.contains("Cs3") && !s.contains("k1") && !s.contains("k2"));
    }
}

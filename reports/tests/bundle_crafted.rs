//! Crafted bundles, correctly signed but wrong in one way each: every check of
//! `verify_bundle` fires with a message naming the member.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use certlab_reports::{
    key_id, sha256_hex, verify_bundle, BundleError, Manifest, ManifestEntry, SignatureFile,
    SigningKey,
};
use common::{key, CREATED};
use ed25519_dalek::Signer;

/// A ustar header as certlab writes it, with any name bytes (even unsafe ones).
fn header(name: &str, size: usize, mtime: u64, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name.as_bytes());
    h.set_size(size as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_entry_type(kind);
    h.set_cksum();
    h
}

fn manifest_bytes(listed: &[(&str, &[u8])]) -> Vec<u8> {
    let manifest = Manifest {
        format: "certlab-bundle".into(),
        version: 1,
        created: CREATED,
        files: listed
            .iter()
            .map(|(p, c)| ManifestEntry {
                path: p.to_string(),
                sha256: sha256_hex(c),
                size: c.len() as u64,
            })
            .collect(),
    };
    let mut v = serde_json::to_vec_pretty(&manifest).unwrap();
    v.push(b'\n');
    v
}

fn signature_bytes(manifest: &[u8], signer: &SigningKey) -> Vec<u8> {
    let vk = signer.verifying_key();
    let sig = SignatureFile {
        algorithm: "ed25519".into(),
        key_id: key_id(&vk),
        public_key: BASE64.encode(vk.as_bytes()),
        signature: BASE64.encode(signer.sign(manifest).to_bytes()),
    };
    let mut v = serde_json::to_vec_pretty(&sig).unwrap();
    v.push(b'\n');
    v
}

/// A tar of `manifest`, its signature by key 7, then `members` as given.
fn craft(manifest: &[u8], members: &[(&str, &[u8])]) -> Vec<u8> {
    craft_with(manifest, &signature_bytes(manifest, &key(7)), members)
}

fn craft_with(manifest: &[u8], signature: &[u8], members: &[(&str, &[u8])]) -> Vec<u8> {
    let mtime = CREATED.unix_timestamp() as u64;
    let mut b = tar::Builder::new(Vec::new());
    let all = [("manifest.json", manifest), ("signature.json", signature)];
    for (name, data) in all.iter().chain(members) {
        b.append(
            &header(name, data.len(), mtime, tar::EntryType::Regular),
            *data,
        )
        .unwrap();
    }
    b.into_inner().unwrap()
}

const RESULTS: (&str, &[u8]) = ("results.json", b"{}\n");

fn err_of(bytes: &[u8]) -> String {
    verify_bundle(bytes, None).unwrap_err().to_string()
}

#[test]
fn crafted_valid_bundle_verifies() {
    let files = [("junit.xml", b"<x/>".as_slice()), RESULTS];
    verify_bundle(
        &craft(&manifest_bytes(&files), &files),
        Some(&key(7).verifying_key()),
    )
    .unwrap();
}

#[test]
fn missing_file_is_named() {
    let blob = b"dmesg output";
    let path = format!("evidence/{}", sha256_hex(blob));
    let listed = [(path.as_str(), blob.as_slice()), RESULTS];
    let bundle = craft(&manifest_bytes(&listed), &[RESULTS]);
    assert_eq!(
        err_of(&bundle),
        format!("missing file {path}: listed in manifest.json but not in the bundle")
    );
}

#[test]
fn digest_and_size_mismatches_are_named() {
    let listed = [("junit.xml", b"<a/>".as_slice()), RESULTS];
    let bundle = craft(&manifest_bytes(&listed), &[("junit.xml", b"<b/>"), RESULTS]);
    assert!(
        err_of(&bundle).starts_with("digest mismatch for junit.xml: "),
        "{}",
        err_of(&bundle)
    );
    let bundle = craft(
        &manifest_bytes(&listed),
        &[("junit.xml", b"<bb/>"), RESULTS],
    );
    assert_eq!(
        err_of(&bundle),
        "size mismatch for junit.xml: manifest.json says 4 bytes, member has 5"
    );
}

#[test]
fn unexpected_and_duplicate_members_are_named() {
    let listed = [RESULTS];
    let bundle = craft(
        &manifest_bytes(&listed),
        &[RESULTS, ("evil.sh", b"rm -rf /")],
    );
    assert_eq!(
        err_of(&bundle),
        "unexpected file evil.sh: not listed in manifest.json"
    );
    let bundle = craft(&manifest_bytes(&listed), &[RESULTS, RESULTS]);
    assert_eq!(err_of(&bundle), "duplicate member results.json");
    let manifest = manifest_bytes(&listed);
    let bundle = craft(&manifest, &[("manifest.json", &manifest), RESULTS]);
    assert_eq!(err_of(&bundle), "duplicate member manifest.json");
}

#[test]
fn unsafe_names_are_caught() {
    for name in [
        "../escape",
        "/etc/cron.d/x",
        "evidence/../../x",
        "./results.json",
    ] {
        let listed = [(name, b"x".as_slice()), RESULTS];
        let mut listed_sorted = listed;
        listed_sorted.sort_by(|a, b| a.0.cmp(b.0));
        let bundle = craft(&manifest_bytes(&listed_sorted), &listed_sorted);
        let err = verify_bundle(&bundle, None).unwrap_err();
        assert_eq!(err, BundleError::UnsafePath { path: name.into() }, "{name}");
        assert!(err.to_string().contains(name));
    }
}

#[test]
fn links_and_other_entry_types_are_rejected() {
    let manifest = manifest_bytes(&[RESULTS]);
    let signature = signature_bytes(&manifest, &key(7));
    let mtime = CREATED.unix_timestamp() as u64;
    let mut b = tar::Builder::new(Vec::new());
    b.append(
        &header(
            "manifest.json",
            manifest.len(),
            mtime,
            tar::EntryType::Regular,
        ),
        manifest.as_slice(),
    )
    .unwrap();
    b.append(
        &header(
            "signature.json",
            signature.len(),
            mtime,
            tar::EntryType::Regular,
        ),
        signature.as_slice(),
    )
    .unwrap();
    let mut link = header("results.json", 0, mtime, tar::EntryType::Symlink);
    link.set_link_name("/etc/shadow").unwrap();
    link.set_cksum();
    b.append(&link, std::io::empty()).unwrap();
    let bundle = b.into_inner().unwrap();
    assert_eq!(err_of(&bundle), "member results.json is not a regular file");
}

#[test]
fn non_canonical_archives_are_caught() {
    let files = [("junit.xml", b"<x/>".as_slice()), RESULTS];
    let manifest = manifest_bytes(&files);
    // Members out of order.
    let bundle = craft(&manifest, &[RESULTS, files[0]]);
    assert!(
        err_of(&bundle).starts_with("bundle is not canonical: differs at byte "),
        "{}",
        err_of(&bundle)
    );
    assert!(
        err_of(&bundle).contains("(header of junit.xml)"),
        "{}",
        err_of(&bundle)
    );
    // Another mtime, checksum fixed.
    let signature = signature_bytes(&manifest, &key(7));
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in [
        ("manifest.json", manifest.as_slice()),
        ("signature.json", &signature),
        files[0],
        files[1],
    ] {
        b.append(&header(name, data.len(), 0, tar::EntryType::Regular), data)
            .unwrap();
    }
    let bundle = b.into_inner().unwrap();
    assert!(
        err_of(&bundle).contains("(header of manifest.json)"),
        "{}",
        err_of(&bundle)
    );
}

#[test]
fn manifest_and_signature_problems_are_named() {
    let files = [RESULTS];
    let manifest = manifest_bytes(&files);

    let bundle = craft(b"not json", &files);
    assert!(
        err_of(&bundle).starts_with("malformed manifest.json: "),
        "{}",
        err_of(&bundle)
    );

    let other = br#"{"format":"oci-layout","version":1}"#;
    let bundle = craft(other, &files);
    assert_eq!(err_of(&bundle), "not a certlab bundle: manifest.json has format \"oci-layout\", expected \"certlab-bundle\"");

    let no_results = manifest_bytes(&[("junit.xml", b"x")]);
    let bundle = craft(&no_results, &[("junit.xml", b"x")]);
    assert_eq!(
        err_of(&bundle),
        "malformed manifest.json: lists no results.json"
    );

    // A manifest changed after signing.
    let signature = signature_bytes(&manifest, &key(7));
    let changed = manifest_bytes(&[("results.json", b"{\"forged\":1}\n")]);
    let bundle = craft_with(
        &changed,
        &signature,
        &[("results.json", b"{\"forged\":1}\n")],
    );
    assert_eq!(
        err_of(&bundle),
        format!(
            "bad signature: signature.json does not verify over manifest.json with key {}",
            key_id(&key(7).verifying_key())
        )
    );

    // signature.json re-indented: same content, not canonical.
    let value: serde_json::Value = serde_json::from_slice(&signature).unwrap();
    let compact = serde_json::to_vec(&value).unwrap();
    let bundle = craft_with(&manifest, &compact, &files);
    assert_eq!(
        err_of(&bundle),
        "malformed signature.json: not in canonical form (as certlab writes it)"
    );

    // A key id that is not the key's.
    let mut sig: SignatureFile = serde_json::from_slice(&signature).unwrap();
    sig.key_id = "0000000000000000".into();
    let bytes = [serde_json::to_vec_pretty(&sig).unwrap(), b"\n".to_vec()].concat();
    let bundle = craft_with(&manifest, &bytes, &files);
    assert!(
        err_of(&bundle)
            .starts_with("malformed signature.json: key_id \"0000000000000000\" does not match"),
        "{}",
        err_of(&bundle)
    );

    // No signature at all.
    let mut b = tar::Builder::new(Vec::new());
    b.append(
        &header("manifest.json", manifest.len(), 0, tar::EntryType::Regular),
        manifest.as_slice(),
    )
    .unwrap();
    let bundle = b.into_inner().unwrap();
    assert_eq!(err_of(&bundle), "not a certlab bundle: no signature.json");
}

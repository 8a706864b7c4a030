//! Signed bundles: round trip, and every way of tampering with one is caught
//! with a message that says where.

#![allow(clippy::unwrap_used)] // tests may unwrap

mod common;

use std::fs;
use std::io::Cursor;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use certlab_reports::{
    key_id, read_bundle_member, sha256_hex, verify_bundle, verify_bundle_reader, write_bundle,
    ArtifactStore, BundleError, SignatureFile, Trust, VerifyLimits, BUNDLE_FILE,
};
use common::{key, CREATED};
use time::macros::datetime;

/// A small output directory: the three reports and two evidence blobs, plus a
/// leftover temporary file that must not be bundled.
fn out_dir(dir: &Path) {
    fs::write(dir.join("results.json"), b"{\"schema_version\":1}\n").unwrap();
    fs::write(dir.join("junit.xml"), b"<testsuites/>\n").unwrap();
    fs::write(
        dir.join("report.html"),
        b"<!DOCTYPE html><title>r</title>\n",
    )
    .unwrap();
    let store = ArtifactStore::open(dir.join("evidence")).unwrap();
    store.put(b"Architecture: aarch64\n").unwrap();
    store.put(&[0u8; 700]).unwrap();
    fs::write(dir.join("evidence/.tmp-interrupted"), b"partial").unwrap();
}

fn small_bundle() -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    out_dir(tmp.path());
    let path = write_bundle(tmp.path(), &key(7), CREATED).unwrap();
    assert_eq!(path, tmp.path().join(BUNDLE_FILE));
    fs::read(path).unwrap()
}

/// (name, header offset, content length) of each member, by reading the archive with `tar`.
fn layout(bytes: &[u8]) -> Vec<(String, usize, usize)> {
    let mut archive = tar::Archive::new(bytes);
    archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            (name, e.raw_header_position() as usize, e.size() as usize)
        })
        .collect()
}

#[test]
fn round_trip() {
    let bytes = small_bundle();
    let signer = key(7);
    let verified = verify_bundle(&bytes, Some(&signer.verifying_key())).unwrap();
    assert_eq!(verified.key_id, key_id(&signer.verifying_key()));
    assert_eq!(verified.public_key, signer.verifying_key());
    assert_eq!(verified.files, 5);
    assert_eq!(verified.manifest.created, CREATED);
    assert_eq!(verified.manifest.format, "certlab-bundle");
    let paths: Vec<&str> = verified
        .manifest
        .files
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    let blob = sha256_hex(b"Architecture: aarch64\n");
    let zeros = sha256_hex(&[0u8; 700]);
    let mut evidence = [format!("evidence/{blob}"), format!("evidence/{zeros}")];
    evidence.sort();
    assert_eq!(
        paths,
        [
            evidence[0].as_str(),
            evidence[1].as_str(),
            "junit.xml",
            "report.html",
            "results.json"
        ]
    );

    let names: Vec<String> = layout(&bytes).into_iter().map(|(n, _, _)| n).collect();
    let mut expected = vec!["manifest.json".to_string(), "signature.json".to_string()];
    expected.extend(paths.iter().map(|p| p.to_string()));
    assert_eq!(names, expected);

    let mut archive = tar::Archive::new(bytes.as_slice());
    for entry in archive.entries().unwrap() {
        let h = entry.unwrap().header().clone();
        assert_eq!(h.mode().unwrap(), 0o644);
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        assert_eq!(h.mtime().unwrap(), CREATED.unix_timestamp() as u64);
        assert_eq!(h.username().unwrap(), Some(""));
        assert!(h.as_ustar().is_some());
    }
    assert!(bytes.ends_with(&[0u8; 1024]));
    assert_eq!(bytes.len() % 512, 0);

    assert_eq!(
        read_bundle_member(&bytes, "results.json").unwrap(),
        b"{\"schema_version\":1}\n"
    );
    assert_eq!(
        read_bundle_member(&bytes, format!("evidence/{zeros}").as_str()).unwrap(),
        vec![0u8; 700]
    );
    let err = read_bundle_member(&bytes, "nope.txt").unwrap_err();
    assert!(err.to_string().contains("nope.txt"), "{err}");

    // Deterministic: the same inputs give the same bytes.
    assert_eq!(small_bundle(), bytes);
    let signature: SignatureFile =
        serde_json::from_slice(&read_bundle_member(&bytes, "signature.json").unwrap()).unwrap();
    assert_eq!(signature.algorithm, "ed25519");
    assert_eq!(
        BASE64.decode(&signature.public_key).unwrap(),
        signer.verifying_key().as_bytes()
    );
}

#[test]
fn system_tar_reads_the_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    out_dir(tmp.path());
    let path = write_bundle(tmp.path(), &key(7), CREATED).unwrap();
    let out = std::process::Command::new("tar")
        .arg("-tvf")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("this test needs the tar command (apt-get install tar): {e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8_lossy(&out.stdout);
    assert_eq!(listing.lines().count(), 7, "{listing}");
    assert!(
        listing.lines().next().unwrap().contains("manifest.json"),
        "{listing}"
    );
}

/// Where a byte of the archive lies.
#[derive(Debug)]
enum Region {
    Header(String, usize),
    Content(String),
    Padding(String),
    End(usize),
}

fn region_of(layout: &[(String, usize, usize)], total: usize, i: usize) -> Region {
    for (name, header, size) in layout {
        let content = header + 512;
        let end = content + size.div_ceil(512) * 512;
        if (*header..content).contains(&i) {
            return Region::Header(name.clone(), *header);
        }
        if (content..content + size).contains(&i) {
            return Region::Content(name.clone());
        }
        if (content + size..end).contains(&i) {
            return Region::Padding(name.clone());
        }
    }
    Region::End(total - 1024)
}

/// Flips byte `i` with `mask`, checks the failure says where, and returns the error's variant name.
fn assert_flip_caught(
    bytes: &[u8],
    layout: &[(String, usize, usize)],
    i: usize,
    mask: u8,
) -> String {
    let mut tampered = bytes.to_vec();
    tampered[i] ^= mask;
    let region = region_of(layout, bytes.len(), i);
    let (err, variant) = match verify_bundle(&tampered, None) {
        Ok(_) => panic!("flip of byte {i} with {mask:#04x} ({region:?}) not caught"),
        Err(e) => (
            e.to_string(),
            format!("{e:?}")
                .split([' ', '{'])
                .next()
                .unwrap_or_default()
                .to_string(),
        ),
    };
    let named = match &region {
        Region::Content(name) => err.contains(name.as_str()),
        Region::Padding(name) => err.contains(&format!("padding after {name}")),
        Region::Header(name, at) => {
            err.contains(&format!("header of {name}")) || err.contains(&format!("byte {at}"))
        }
        Region::End(at) => err.contains("end-of-archive") || err.contains(&format!("byte {at}")),
    };
    assert!(
        named,
        "flip of byte {i} ({region:?}): message does not say where: {err}"
    );
    variant
}

#[test]
fn every_flipped_byte_is_caught_and_located() {
    let bytes = small_bundle();
    let layout = layout(&bytes);
    assert!(
        bytes.len() < 16 * 1024,
        "keep the bundle small: {}",
        bytes.len()
    );
    let mut variants = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..bytes.len() {
        *variants
            .entry(assert_flip_caught(&bytes, &layout, i, 0x01))
            .or_default() += 1;
    }
    for i in (0..bytes.len()).step_by(7) {
        *variants
            .entry(assert_flip_caught(&bytes, &layout, i, 0xff))
            .or_default() += 1;
    }
    eprintln!("{variants:?}");
    // Every layer of protection is exercised: tar checksums, the manifest's
    // signature, signature.json's own form, the digests and the canonical rebuild.
    for v in [
        "NotTar",
        "Malformed",
        "BadSignature",
        "DigestMismatch",
        "NotCanonical",
    ] {
        assert!(
            variants.contains_key(v),
            "no flip ended in {v}: {variants:?}"
        );
    }
}

#[test]
fn content_flips_name_the_member() {
    let bytes = small_bundle();
    for (name, header, size) in layout(&bytes) {
        let mut tampered = bytes.clone();
        tampered[header + 512 + size / 2] ^= 0x20;
        let err = verify_bundle(&tampered, None).unwrap_err();
        match name.as_str() {
            "manifest.json" | "signature.json" => assert!(
                matches!(
                    err,
                    BundleError::Malformed { .. } | BundleError::BadSignature { .. }
                ),
                "{name}: {err}"
            ),
            _ => assert_eq!(
                err.to_string(),
                format!(
                    "digest mismatch for {name}: manifest.json says sha256 {}, member has {}",
                    sha256_hex(&bytes[header + 512..header + 512 + size]),
                    sha256_hex(&tampered[header + 512..header + 512 + size])
                )
            ),
        }
        assert!(err.to_string().contains(&name), "{err}");
    }
}

#[test]
fn wrong_trusted_key_is_caught() {
    let bytes = small_bundle();
    let other = key(8).verifying_key();
    let err = verify_bundle(&bytes, Some(&other)).unwrap_err();
    let found = key_id(&key(7).verifying_key());
    let expected = key_id(&other);
    assert_eq!(
        err,
        BundleError::UntrustedKey {
            found: found.clone(),
            trusted: vec![expected.clone()]
        }
    );
    assert_eq!(
        err.to_string(),
        format!("signed by key {found}, which is not trusted (trusted keys: {expected})")
    );
}

#[test]
fn trust_is_a_set_of_keys_or_explicitly_any() {
    let bytes = small_bundle();
    let signer = key(7).verifying_key();
    let others = [key(8).verifying_key(), key(9).verifying_key()];
    let limits = VerifyLimits::default();
    let verify = |trust| verify_bundle_reader(Cursor::new(&bytes), trust, &limits);
    // No trusted key at all: nothing verifies, and the message says so.
    let err = verify(Trust::Keys(&[])).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "signed by key {}, which is not trusted (trusted keys: none)",
            key_id(&signer)
        )
    );
    let err = verify(Trust::Keys(&others)).unwrap_err();
    assert!(
        matches!(err, BundleError::UntrustedKey { ref trusted, .. } if trusted.len() == 2),
        "{err}"
    );
    let with_signer = [others[0], signer, others[1]];
    assert_eq!(
        verify(Trust::Keys(&with_signer)).unwrap().key_id,
        key_id(&signer)
    );
    assert_eq!(verify(Trust::AnyKey).unwrap().key_id, key_id(&signer));
    // Integrity is checked whoever is trusted.
    let mut tampered = bytes.clone();
    let n = tampered.len();
    tampered[n - 1500] ^= 1;
    let err = verify_bundle_reader(Cursor::new(&tampered), Trust::AnyKey, &limits).unwrap_err();
    assert!(!matches!(err, BundleError::UntrustedKey { .. }), "{err}");
}

#[test]
fn each_limit_is_enforced_with_a_message_naming_it() {
    let bytes = small_bundle();
    let len = bytes.len() as u64;
    let zeros = format!("evidence/{}", sha256_hex(&[0u8; 700]));
    let check =
        |limits: VerifyLimits| verify_bundle_reader(Cursor::new(&bytes), Trust::AnyKey, &limits);
    let at = |f: fn(&mut VerifyLimits)| {
        let mut l = VerifyLimits::default();
        f(&mut l);
        l
    };
    // Exactly at each limit: accepted.
    let exact = VerifyLimits {
        max_bundle_bytes: len,
        max_member_bytes: 700,
        max_members: 7,
        max_manifest_bytes: 2048,
    };
    check(exact).unwrap();

    let err = check(VerifyLimits {
        max_bundle_bytes: len - 1,
        ..exact
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the bundle is {len} bytes, over the limit of {} bytes",
            len - 1
        )
    );
    let err = check(VerifyLimits {
        max_member_bytes: 699,
        ..exact
    })
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("member {zeros} is 700 bytes, over the limit of 699 bytes")
    );
    let err = check(VerifyLimits {
        max_members: 6,
        ..exact
    })
    .unwrap_err();
    assert_eq!(err, BundleError::TooManyMembers { limit: 6 });
    assert_eq!(err.to_string(), "the bundle has more than 6 members");
    let err = check(at(|l| l.max_manifest_bytes = 100)).unwrap_err();
    assert!(
        err.to_string().starts_with("member manifest.json is ")
            && err.to_string().ends_with("over the limit of 100 bytes"),
        "{err}"
    );
    // A header that claims more than the file holds is caught before reading.
    let mut huge = bytes.clone();
    let layout = layout(&bytes);
    let (name, header, _) = &layout[2];
    let mut h = tar::Header::new_ustar();
    h.as_mut_bytes()
        .copy_from_slice(&huge[*header..header + 512]);
    h.set_size(1 << 40);
    h.set_cksum();
    huge[*header..header + 512].copy_from_slice(h.as_bytes());
    let err = verify_bundle_reader(Cursor::new(&huge), Trust::AnyKey, &VerifyLimits::default())
        .unwrap_err();
    assert!(
        err.to_string().starts_with(&format!(
            "member {name} is 1099511627776 bytes, over the limit"
        )),
        "{err}"
    );
}

#[test]
fn a_bundle_file_is_verified_as_a_stream() {
    let tmp = tempfile::tempdir().unwrap();
    out_dir(tmp.path());
    // A few MiB of evidence, read from the file in 64 KiB steps.
    let store = ArtifactStore::open(tmp.path().join("evidence")).unwrap();
    let big: Vec<u8> = (0..5_000_000u32).map(|i| (i % 251) as u8).collect();
    store.put(&big).unwrap();
    let path = write_bundle(tmp.path(), &key(7), CREATED).unwrap();
    let file = fs::File::open(&path).unwrap();
    let v = verify_bundle_reader(file, Trust::AnyKey, &VerifyLimits::default()).unwrap();
    assert_eq!(v.files, 6);
    // The same bytes in memory give the same answer.
    assert_eq!(verify_bundle(&fs::read(&path).unwrap(), None).unwrap(), v);
}

#[test]
fn truncated_bundles_are_caught() {
    let bytes = small_bundle();
    let layout = layout(&bytes);
    for n in 0..bytes.len() {
        let err = verify_bundle(&bytes[..n], None).err();
        assert!(err.is_some(), "truncated to {n} bytes, not caught");
    }
    // Cut inside the content of the last member: the message names it.
    let (last, header, _) = layout.last().unwrap();
    let err = verify_bundle(&bytes[..header + 512 + 3], None).unwrap_err();
    assert!(matches!(err, BundleError::NotTar { .. }), "{err}");
    assert!(
        err.to_string()
            .contains(&format!("member {last} is truncated")),
        "{err}"
    );
    // Cut off the end-of-archive blocks.
    let err = verify_bundle(&bytes[..bytes.len() - 1024], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "bundle is not canonical: differs at byte {} (end-of-archive blocks)",
            bytes.len() - 1024
        )
    );
    // Nothing at all.
    let err = verify_bundle(&[], None).unwrap_err();
    assert_eq!(
        err,
        BundleError::NotBundle {
            reason: "no manifest.json".into()
        }
    );
}

#[test]
fn random_bytes_are_not_a_bundle() {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut random = Vec::with_capacity(4096);
    for _ in 0..4096 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        random.push(state as u8);
    }
    let err = verify_bundle(&random, None).unwrap_err();
    assert!(matches!(err, BundleError::NotTar { .. }), "{err}");
    let err = verify_bundle(b"PK\x03\x04 a zip file", None).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::NotTar { .. } | BundleError::NotBundle { .. }
        ),
        "{err}"
    );
}

#[test]
fn trailing_data_is_caught() {
    let mut bytes = small_bundle();
    let len = bytes.len();
    bytes.extend_from_slice(&[0u8; 512]);
    let err = verify_bundle(&bytes, None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "bundle is not canonical: differs at byte {len} (data after the end-of-archive blocks)"
        )
    );
}

#[test]
fn write_bundle_errors_name_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    out_dir(tmp.path());
    fs::remove_file(tmp.path().join("junit.xml")).unwrap();
    let err = write_bundle(tmp.path(), &key(7), CREATED).unwrap_err();
    assert!(err.to_string().contains("junit.xml"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    out_dir(tmp.path());
    fs::create_dir(tmp.path().join("evidence/subdir")).unwrap();
    let err = write_bundle(tmp.path(), &key(7), CREATED).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot bundle evidence/subdir: not a regular file"
    );

    let tmp = tempfile::tempdir().unwrap();
    out_dir(tmp.path());
    let err = write_bundle(tmp.path(), &key(7), datetime!(1969-12-31 23:59:59 UTC)).unwrap_err();
    assert!(err.to_string().contains("before 1970"), "{err}");
}

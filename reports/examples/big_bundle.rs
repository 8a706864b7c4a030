//! Writes a signed bundle of about SIZE_MIB MiB (64 MiB evidence blobs of
//! pseudo-random bytes) into DIR/bundle.tar, to measure `certlab bundle
//! verify` on large bundles (see BENCHMARKS.md).
//!
//! `cargo run -p certlab-reports --example big_bundle -- DIR SIZE_MIB`

use std::process::ExitCode;

use certlab_reports::{write_bundle, ArtifactStore, SigningKey};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(dir), Some(mib)) = (args.get(1), args.get(2).and_then(|s| s.parse::<u64>().ok()))
    else {
        eprintln!("usage: big_bundle DIR SIZE_MIB");
        return ExitCode::from(2);
    };
    let dir = std::path::Path::new(dir);
    let run = || -> Result<std::path::PathBuf, Box<dyn std::error::Error>> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("results.json"), b"{\"schema_version\":1}\n")?;
        std::fs::write(dir.join("junit.xml"), b"<testsuites/>\n")?;
        std::fs::write(
            dir.join("report.html"),
            b"<!DOCTYPE html><title>r</title>\n",
        )?;
        let store = ArtifactStore::open(dir.join("evidence"))?;
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..mib.div_ceil(64) {
            let blob: Vec<u8> = (0..64 << 20)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            store.put(&blob)?;
        }
        let created = time::OffsetDateTime::from_unix_timestamp(1_750_000_000)?;
        Ok(write_bundle(
            dir,
            &SigningKey::from_bytes(&[7; 32]),
            created,
        )?)
    };
    match run() {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("big_bundle: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `certlab kabi …` end to end: the binary's exit codes and outputs over
//! real Debian kernels (`scripts/fetch-kabi-data`).
#![allow(clippy::expect_used, clippy::unwrap_used)] // tests: a failure should panic

/// Where the real Debian kernels are cached (as in `kabi/tests/common`,
/// whose ELF builders this test does not need).
mod common {
    use std::path::PathBuf;

    /// The cache directory; panics naming the fetch script when it is missing.
    pub fn data_dir() -> PathBuf {
        let dir = std::env::var_os("CERTLAB_TEST_KABI_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                let home = std::env::var_os("HOME").unwrap_or_default();
                PathBuf::from(home).join(".cache/certlab/kabi")
            });
        for abi in ["6.1.0-56-amd64", "6.1.0-50-amd64"] {
            let p = dir.join(abi).join("Module.symvers");
            assert!(
                p.is_file() && dir.join(abi).join("modules").is_dir(),
                "kabi test data missing at {}: run scripts/fetch-kabi-data (or set CERTLAB_TEST_KABI_DIR)",
                dir.display()
            );
        }
        dir
    }

    pub fn symvers(abi: &str) -> PathBuf {
        data_dir().join(abi).join("Module.symvers")
    }

    pub fn modules(abi: &str) -> PathBuf {
        data_dir().join(abi).join("modules")
    }
}

use std::process::{Command, Output};

const EXIT_OK: i32 = 0;
const EXIT_INCOMPATIBLE: i32 = 1;
const EXIT_INFRA: i32 = 2;
const EXIT_BAD_INPUT: i32 = 3;

fn certlab(args: &[&str]) -> Output {
    let mut argv = vec!["kabi"];
    argv.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(&argv)
        .env_remove("CERTLAB_LOG")
        .output()
        .unwrap()
}

fn run(args: &[&str]) -> i32 {
    let o = certlab(args);
    o.status
        .code()
        .unwrap_or_else(|| panic!("{args:?} was killed"))
}

/// Parses: a usage error is exit 2 with clap's message, anything else got past clap.
fn parses(args: &[&str]) -> bool {
    let o = certlab(args);
    let err = String::from_utf8_lossy(&o.stderr);
    !(o.status.code() == Some(2) && (err.contains("Usage:") || err.contains("usage:")))
}

#[test]
fn usage_parses() {
    assert!(parses(&[
        "check",
        "--kernel",
        "a,b",
        "--kernel",
        "c",
        "--allowlist",
        "l",
        "--with",
        "d.ko",
        "--format",
        "json",
        "m.ko",
        "dir",
    ]));
    assert!(parses(&["diff", "old", "new", "--allowlist", "x"]));
    assert!(parses(&[
        "allowlist",
        "import",
        "f",
        "--from-format",
        "rhel",
        "--to",
        "json",
    ]));
    assert!(!parses(&["check", "m.ko"]), "--kernel is required");
}

#[test]
fn exit_codes_for_bad_and_missing_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("Module.symvers");
    std::fs::write(&bad, "not a symvers line\n").unwrap();
    let ko = dir.path().join("x.ko");
    std::fs::write(&ko, b"\x7fELF garbage").unwrap();
    let good = dir.path().join("good.symvers");
    std::fs::write(&good, "0x00000001\tprintk\tvmlinux\tEXPORT_SYMBOL\t\n").unwrap();
    let bad_s = bad.to_str().unwrap();
    let good_s = good.to_str().unwrap();
    assert_eq!(
        run(&["check", "--kernel", bad_s, ko.to_str().unwrap()]),
        EXIT_BAD_INPUT
    );
    assert_eq!(
        run(&["check", "--kernel", good_s, ko.to_str().unwrap()]),
        EXIT_BAD_INPUT
    );
    assert_eq!(
        run(&["check", "--kernel", "/nonexistent/k", ko.to_str().unwrap()]),
        EXIT_INFRA
    );
    assert_eq!(run(&["diff", good_s, good_s]), EXIT_OK);
    let list = dir.path().join("list.json");
    std::fs::write(&list, "{ nope").unwrap();
    assert_eq!(
        run(&["allowlist", "show", list.to_str().unwrap()]),
        EXIT_BAD_INPUT
    );
}

#[test]
fn real_kernels_through_the_cli() {
    let (s50, s56) = (
        common::symvers("6.1.0-50-amd64"),
        common::symvers("6.1.0-56-amd64"),
    );
    let m56 = common::modules("6.1.0-56-amd64");
    let e1000 = m56.join("kernel/drivers/net/ethernet/intel/e1000e");
    let dir56 = format!("{},{}", m56.display(), s56.display());
    assert_eq!(
        run(&["check", "--kernel", &dir56, e1000.to_str().unwrap()]),
        EXIT_OK
    );
    assert_eq!(
        run(&[
            "check",
            "--kernel",
            s50.to_str().unwrap(),
            "--kernel",
            &dir56,
            "--format",
            "json",
            e1000.to_str().unwrap()
        ]),
        EXIT_INCOMPATIBLE
    );
    assert_eq!(
        run(&[
            "diff",
            s50.to_str().unwrap(),
            s56.to_str().unwrap(),
            "--format",
            "json"
        ]),
        EXIT_INCOMPATIBLE
    );

    // An allowlist generated from a driver: the driver checks clean against it,
    // and diff 50 → 56 is release-blocking because those symbols changed CRC.
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("allowlist.toml");
    assert_eq!(
        run(&[
            "allowlist",
            "generate",
            "--kernel",
            &dir56,
            "--from",
            e1000.to_str().unwrap(),
            "--out",
            list.to_str().unwrap()
        ]),
        EXIT_OK
    );
    let l = list.to_str().unwrap();
    assert_eq!(
        run(&[
            "check",
            "--kernel",
            &dir56,
            "--allowlist",
            l,
            e1000.to_str().unwrap()
        ]),
        EXIT_OK
    );
    assert_eq!(
        run(&[
            "diff",
            s50.to_str().unwrap(),
            s56.to_str().unwrap(),
            "--allowlist",
            l
        ]),
        EXIT_INCOMPATIBLE
    );
    let rhel = dir.path().join("kabi_stablelist_x86_64");
    assert_eq!(
        run(&[
            "allowlist",
            "export",
            l,
            "--to",
            "rhel",
            "--out",
            rhel.to_str().unwrap()
        ]),
        EXIT_OK
    );
    assert_eq!(
        run(&["allowlist", "diff", l, rhel.to_str().unwrap()]),
        EXIT_OK
    );
    // 56 against 56: only additions and no break.
    assert_eq!(
        run(&[
            "diff",
            s56.to_str().unwrap(),
            s56.to_str().unwrap(),
            "--allowlist",
            l
        ]),
        EXIT_OK
    );
}

#[test]
fn a_cached_check_gives_identical_json() {
    let data = common::data_dir().join("6.12.117+deb13-amd64");
    let symvers = data.join("Module.symvers");
    let intel = data.join("modules/kernel/drivers/net/ethernet/intel");
    assert!(
        symvers.is_file() && intel.is_dir(),
        "trixie .ko.xz data missing at {}: run scripts/fetch-kabi-data",
        data.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().to_str().unwrap();
    let check = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--kernel",
            symvers.to_str().unwrap(),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        args.push(intel.to_str().unwrap());
        let o = certlab(&args);
        (o.status.code(), String::from_utf8(o.stdout).unwrap())
    };
    let plain = check(&["--no-cache"]);
    let cold = check(&["--cache", cache]);
    let entries = std::fs::read_dir(dir.path()).unwrap().count();
    assert!(entries > 0, "the cold run filled the cache");
    let warm = check(&["--cache", cache]);
    assert_eq!(plain.0, Some(EXIT_OK));
    assert!(plain.1.contains("e1000e"), "{}", &plain.1[..500]);
    assert_eq!(cold, plain);
    assert_eq!(warm, plain);
    // --no-cache and --cache together are a usage error.
    assert!(!parses(&[
        "check",
        "--kernel",
        "k",
        "--cache",
        "d",
        "--no-cache",
        "m.ko"
    ]));
}

/// A zstd frame of `blocks` RLE blocks of 128 KiB zeros: 4 bytes per
/// 128 KiB, the cheapest real compression bomb there is.
fn zstd_rle_bomb(blocks: usize) -> Vec<u8> {
    // Magic; frame header: no content size, no checksum; window 2^17.
    let mut b = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3];
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = last | (1 << 1) | ((128 << 10) << 3); // RLE block of 128 KiB
        b.extend_from_slice(&header.to_le_bytes()[..3]);
        b.push(0);
    }
    b
}

/// An ar archive (a `.deb`) of `members`, written out by hand.
fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = b"!<arch>\n".to_vec();
    for (name, body) in members {
        let header = format!(
            "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
            name,
            0,
            0,
            0,
            "100644",
            body.len()
        );
        assert_eq!(header.len(), 60);
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        if body.len() % 2 == 1 {
            out.push(b'\n');
        }
    }
    out
}

#[test]
fn compression_bombs_are_bad_input_naming_file_and_limit() {
    let s56 = common::symvers("6.1.0-56-amd64");
    let dir = tempfile::tempdir().unwrap();
    // 513 MiB of zeros in 16 KiB: over the 512 MiB module limit.
    let bomb = dir.path().join("bomb.ko.zst");
    std::fs::write(&bomb, zstd_rle_bomb(513 * 8)).unwrap();
    let o = certlab(&[
        "check",
        "--no-cache",
        "--kernel",
        s56.to_str().unwrap(),
        bomb.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(EXIT_BAD_INPUT), "{err}");
    assert!(
        err.contains(&format!(
            "{}: kernel module larger than the limit of 512 MiB when decompressed",
            bomb.display()
        )),
        "{err}"
    );

    // A package whose module member claims 600 MiB: refused from its tar
    // header, before anything is read or allocated.
    let mut tar_header = tar::Header::new_gnu();
    tar_header
        .set_path("./lib/modules/6.1.0-56-amd64/kernel/x.ko")
        .unwrap();
    tar_header.set_size(600 << 20);
    tar_header.set_mode(0o644);
    tar_header.set_cksum();
    let deb = dir.path().join("bomb.deb");
    std::fs::write(
        &deb,
        ar(&[
            ("debian-binary", b"2.0\n"),
            ("data.tar", tar_header.as_bytes()),
        ]),
    )
    .unwrap();
    let o = certlab(&[
        "check",
        "--no-cache",
        "--kernel",
        s56.to_str().unwrap(),
        deb.to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(EXIT_BAD_INPUT), "{err}");
    assert!(
        err.contains(&format!(
            "{}: lib/modules/6.1.0-56-amd64/kernel/x.ko: kernel module larger than the limit of 512 MiB",
            deb.display()
        )),
        "{err}"
    );
}

/// `sha256sum` of bytes, by coreutils: a digest computed outside certlab.
fn sha256sum(bytes: &[u8]) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

/// A directory's digest as the JSON defines it: sha256 of the sorted
/// `relative/path\0<sha256>\n` lines of its files.
fn dir_digest(dir: &std::path::Path, rels: &[&str]) -> String {
    let mut rels = rels.to_vec();
    rels.sort();
    let mut list = Vec::new();
    for r in rels {
        list.extend_from_slice(r.as_bytes());
        list.push(0);
        list.extend_from_slice(sha256sum(&std::fs::read(dir.join(r)).unwrap()).as_bytes());
        list.push(b'\n');
    }
    sha256sum(&list)
}

#[test]
fn input_digests_are_right_cold_warm_and_after_a_change() {
    let s56 = common::symvers("6.1.0-56-amd64");
    let real = common::modules("6.1.0-56-amd64").join("kernel/drivers/net");
    let dir = tempfile::tempdir().unwrap();
    let mods = dir.path().join("mods");
    std::fs::create_dir_all(mods.join("phy")).unwrap();
    let rels = ["mii.ko", "dummy.ko", "phy/libphy.ko"];
    for r in rels {
        std::fs::copy(real.join(r), mods.join(r)).unwrap();
    }
    let cache = dir.path().join("cache");
    let check = |extra: &[&str]| {
        let mut args = vec![
            "check",
            "--kernel",
            s56.to_str().unwrap(),
            "--format",
            "json",
        ];
        args.extend_from_slice(extra);
        args.push(mods.to_str().unwrap());
        let o = certlab(&args);
        assert_eq!(
            o.status.code(),
            Some(EXIT_OK),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let digests = |json: &str| -> Vec<(String, String)> {
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        v["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                (
                    i["path"].as_str().unwrap().to_string(),
                    i["sha256"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let want = |mods_digest: String| {
        vec![
            (
                s56.display().to_string(),
                sha256sum(&std::fs::read(&s56).unwrap()),
            ),
            (mods.display().to_string(), mods_digest),
        ]
    };
    let cache_s = cache.to_str().unwrap();
    let plain = check(&["--no-cache"]);
    assert_eq!(digests(&plain), want(dir_digest(&mods, &rels)));
    let cold = check(&["--cache", cache_s]);
    assert!(
        std::fs::read_dir(cache.join("digests")).unwrap().count() >= 2,
        "the cold run recorded the digests"
    );
    let warm = check(&["--cache", cache_s]);
    assert_eq!(cold, plain);
    assert_eq!(warm, plain);
    // A module replaced in place (another size, new ctime) is hashed again.
    std::fs::copy(real.join("macvlan.ko"), mods.join("dummy.ko")).unwrap();
    let changed = check(&["--cache", cache_s]);
    let d = digests(&changed);
    assert_eq!(d, want(dir_digest(&mods, &rels)));
    assert_ne!(d, digests(&plain));
    assert_eq!(changed, check(&["--no-cache"]));
}

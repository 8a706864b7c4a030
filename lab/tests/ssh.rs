//! `Ssh` against a real OpenSSH server started by each test on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use certlab_lab::ssh::{HostKeyCheck, SshConfig, Stream};
use certlab_lab::{Ssh, Target, TargetError};
use common::sshd::{new_key, read_pub, whoami, Sshd};

const T: Duration = Duration::from_secs(30);

fn target(sshd: &Sshd) -> Ssh {
    Ssh::new("sut1", sshd.config())
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

#[test]
fn exec_reports_exit_codes_and_both_streams() {
    let sshd = Sshd::start();
    let t = target(&sshd);
    let o = t.exec("echo out; echo err >&2; exit 3", T).unwrap();
    assert_eq!(o.exit, Some(3), "{o:?}");
    assert_eq!(o.stdout, b"out\n");
    assert_eq!(o.stderr, b"err\n");
    assert!(!o.timed_out && !o.success());

    let o = t.exec("true", T).unwrap();
    assert!(o.success(), "{o:?}");
    // The command runs under /bin/sh with its arguments intact.
    let o = t
        .exec(r#"printf '%s|' "a b" 'c'\''d' "$LC_ALL""#, T)
        .unwrap();
    assert_eq!(o.stdout_str(), "a b|c'd|C|");
    // stdin is empty, not the channel.
    let o = t.exec("cat; echo done", T).unwrap();
    assert_eq!(o.stdout_str(), "done\n");
    assert!(t.has_command("sh").unwrap());
    assert!(!t.has_command("certlab-no-such-command").unwrap());
}

#[test]
fn large_output_on_both_streams_arrives_whole() {
    let sshd = Sshd::start();
    let t = target(&sshd);
    let start = Instant::now();
    let o = t
        .exec(
            "head -c 5000000 /dev/zero | tr '\\0' e >&2 & seq 1 2000000; wait",
            T,
        )
        .unwrap();
    assert!(o.success(), "exit {:?}", o.exit);
    assert_eq!(o.stderr.len(), 5_000_000);
    assert!(o.stderr.iter().all(|b| *b == b'e'));
    let out = o.stdout_str();
    assert_eq!(out.lines().count(), 2_000_000);
    assert_eq!(out.lines().last(), Some("2000000"));
    eprintln!(
        "{} MB over ssh in {:?}",
        (o.stdout.len() + o.stderr.len()) / 1_000_000,
        start.elapsed()
    );
}

#[test]
fn output_is_streamed_as_it_comes() {
    let sshd = Sshd::start();
    let t = target(&sshd);
    let start = Instant::now();
    let mut seen = Vec::new();
    let o = t
        .exec_streaming(
            "echo first; sleep 0.5; echo second >&2",
            T,
            &mut |s, chunk| seen.push((s, chunk.to_vec(), start.elapsed())),
        )
        .unwrap();
    assert!(o.success());
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(
        (seen[0].0, seen[0].1.as_slice()),
        (Stream::Stdout, &b"first\n"[..])
    );
    assert_eq!(
        (seen[1].0, seen[1].1.as_slice()),
        (Stream::Stderr, &b"second\n"[..])
    );
    assert!(
        seen[1].2 - seen[0].2 >= Duration::from_millis(400),
        "first chunk not delivered before the command ended: {seen:?}"
    );
}

#[test]
fn timeout_returns_on_time_kills_the_command_and_leaves_a_usable_target() {
    let sshd = Sshd::start();
    let t = target(&sshd);
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    // A background grandchild keeps stdout open: the hard case for a close.
    let cmd = format!(
        "sleep 61 & echo $! > {p}; echo $$ >> {p}; echo started; sleep 62",
        p = pids.display()
    );
    let deadline = Duration::from_secs(1);
    let start = Instant::now();
    let o = t.exec(&cmd, deadline).unwrap();
    let took = start.elapsed();
    assert!(o.timed_out, "{o:?}");
    assert_eq!(o.exit, None);
    assert_eq!(o.stdout_str(), "started\n");
    assert!(took >= deadline, "returned early: {took:?}");
    // The watchdog closed the channel promptly, so the connection was kept.
    assert!(t.is_connected(), "connection dropped after a timeout");
    assert!(
        took < deadline + Duration::from_millis(1000),
        "returned {took:?} after a {deadline:?} timeout"
    );
    // Every process of the command is gone soon after.
    let pids: Vec<u32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2);
    let gone_by = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| pid_alive(*p)) {
        assert!(
            Instant::now() < gone_by,
            "timed-out command still running: {pids:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The target works afterwards (same connection or a new one).
    let o = t.exec("echo again", T).unwrap();
    assert_eq!(o.stdout_str(), "again\n");
    assert_eq!(t.read_text("/proc/sys/kernel/ostype").unwrap(), "Linux");

    // A quiet command that ignores its stdin times out just as fast.
    let start = Instant::now();
    let o = t.exec("sleep 63", Duration::from_millis(300)).unwrap();
    assert!(o.timed_out);
    // Not waited out: the command's own duration is the timeout, not 63 s.
    assert!(o.duration < Duration::from_secs(63), "{:?}", o.duration);
    eprintln!("MEASURE quiet command timeout after {:?}", start.elapsed());
    assert!(t.exec("true", T).unwrap().success());
}

#[test]
fn sftp_round_trip_list_dir_and_read_link() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start();
    let t = target(&sshd);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap().to_string();

    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let f = format!("{d}/blob.bin");
    t.put_file(&f, &data, 0o640).unwrap();
    assert_eq!(t.read_file(&f).unwrap(), data);
    let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o640);
    // Overwriting truncates.
    t.put_file(&f, b"short\n", 0o755).unwrap();
    assert_eq!(t.read_text(&f).unwrap(), "short");
    assert_eq!(
        std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777,
        0o755
    );

    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::os::unix::fs::symlink("blob.bin", dir.path().join("link")).unwrap();
    std::os::unix::fs::symlink("sub", dir.path().join("dirlink")).unwrap();
    let entries: Vec<_> = t
        .list_dir(&d)
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.is_dir, e.is_symlink))
        .collect();
    assert_eq!(
        entries,
        vec![
            ("blob.bin".to_string(), false, false),
            ("dirlink".to_string(), true, true),
            ("link".to_string(), false, true),
            ("sub".to_string(), true, false),
        ]
    );
    assert_eq!(t.read_link(&format!("{d}/link")).unwrap(), "blob.bin");
    assert!(t.exists(&format!("{d}/sub")).unwrap());
    assert!(!t.exists(&format!("{d}/nope")).unwrap());

    // Errors are typed like Local's.
    let e = t.read_file(&format!("{d}/nope")).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    assert!(
        e.to_string().contains("sut1") && e.to_string().contains("nope"),
        "{e}"
    );
    assert!(t.list_dir(&format!("{d}/nope")).unwrap_err().is_not_found());
    assert!(t.read_link(&format!("{d}/nope")).is_err());

    // procfs and sysfs files (size 0 in stat) read whole.
    let local = std::fs::read("/proc/cpuinfo").unwrap();
    let remote = t.read_file("/proc/cpuinfo").unwrap();
    assert_eq!(remote.len(), local.len());
    let ostype = t.read_text("/proc/sys/kernel/ostype").unwrap();
    assert_eq!(ostype, "Linux");

    // Streaming copies both ways.
    let src = dir.path().join("src.bin");
    std::fs::write(&src, &data).unwrap();
    assert_eq!(
        t.put_path(&src, &format!("{d}/up.bin"), 0o600).unwrap(),
        data.len() as u64
    );
    let back = dir.path().join("back.bin");
    assert_eq!(
        t.get_file(&format!("{d}/up.bin"), &back).unwrap(),
        data.len() as u64
    );
    assert_eq!(std::fs::read(&back).unwrap(), data);
}

#[test]
fn a_wrong_pinned_host_key_is_refused() {
    let sshd = Sshd::start();
    let other = read_pub(&new_key(sshd.dir.path(), "other"));
    let mut cfg = sshd.config();
    cfg.host_key = HostKeyCheck::Pinned(other.clone());
    let t = Ssh::new("sut1", cfg);
    let e = t.exec("true", T).unwrap_err();
    assert!(matches!(e, TargetError::HostKeyMismatch { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("sut1"), "{msg}");
    assert!(msg.contains(&format!("127.0.0.1:{}", sshd.port)), "{msg}");
    assert!(msg.contains(&other.fingerprint()), "{msg}");
    assert!(msg.contains(&sshd.host_key.fingerprint()), "{msg}");
    // Nothing ran, and file access is refused the same way.
    assert!(matches!(
        t.read_file("/etc/hostname").unwrap_err(),
        TargetError::HostKeyMismatch { .. }
    ));
    // wait_ready gives up at once instead of polling: one connection
    // reaches the server, through a forwarder that counts them.
    let (port, connections) = counting_forwarder(sshd.port);
    let mut cfg = sshd.config();
    cfg.port = port;
    cfg.host_key = HostKeyCheck::Pinned(other);
    let t = Ssh::new("sut1", cfg);
    let e = t.wait_ready(Duration::from_secs(10)).unwrap_err();
    assert!(matches!(e, TargetError::HostKeyMismatch { .. }), "{e:?}");
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// A loopback TCP forwarder to `to` that counts the connections it
/// accepts; its threads end with the connections (and the test process).
fn counting_forwarder(to: u16) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            seen.fetch_add(1, Ordering::SeqCst);
            let Ok(server) = TcpStream::connect(("127.0.0.1", to)) else {
                continue;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut c, mut s) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c, &mut s);
                let _ = s.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut s2, &mut c2);
                let _ = c2.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    (port, count)
}

#[test]
fn trust_on_first_use_asks_once_and_then_pins() {
    let mut sshd = Sshd::start();
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s2 = seen.clone();
    let tofu: certlab_lab::ssh::TrustOnFirstUse = Arc::new(move |name, addr, key| {
        s2.lock().unwrap().push(format!("{name} {addr} {key}"));
        true
    });
    let cfg = SshConfig::new(
        "127.0.0.1",
        sshd.port,
        &whoami(),
        &sshd.client_key,
        HostKeyCheck::TrustOnFirstUse(tofu),
    );
    let t = Ssh::new("sut1", cfg);
    assert!(t.host_key().is_none());
    t.connect().unwrap();
    assert_eq!(t.host_key().as_ref(), Some(&sshd.host_key));
    sshd.restart();
    assert!(t.exec("true", T).unwrap().success());
    let seen = seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![format!("sut1 127.0.0.1:{} {}", sshd.port, sshd.host_key)]
    );

    // A refusing callback means no connection.
    let cfg = SshConfig::new(
        "127.0.0.1",
        sshd.port,
        &whoami(),
        &sshd.client_key,
        HostKeyCheck::TrustOnFirstUse(Arc::new(|_, _, _| false)),
    );
    let e = Ssh::new("sut2", cfg).exec("true", T).unwrap_err();
    assert!(matches!(e, TargetError::HostKeyUntrusted { .. }), "{e:?}");
}

#[test]
fn a_key_the_server_does_not_know_fails_authentication() {
    let sshd = Sshd::start();
    let mut cfg = sshd.config();
    cfg.key_file = new_key(sshd.dir.path(), "stranger");
    let e = Ssh::new("sut1", cfg).exec("true", T).unwrap_err();
    assert!(matches!(e, TargetError::Auth { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains(&format!("authentication as {}", whoami())),
        "{e}"
    );

    let mut cfg = sshd.config();
    cfg.key_file = sshd.dir.path().join("missing_key");
    let e = Ssh::new("sut1", cfg).exec("true", T).unwrap_err();
    assert!(e.to_string().contains("missing_key"), "{e}");
}

#[test]
fn reconnects_after_sshd_restarts() {
    let mut sshd = Sshd::start();
    let t = target(&sshd);
    assert_eq!(t.exec("echo one", T).unwrap().stdout_str(), "one\n");
    assert!(t.is_connected());
    // The machine "reboots": sshd and all its sessions die, then come back.
    sshd.restart();
    assert_eq!(t.exec("echo two", T).unwrap().stdout_str(), "two\n");
    sshd.restart();
    assert_eq!(t.read_text("/proc/sys/kernel/ostype").unwrap(), "Linux");

    // While it is down: a clear connection error, then wait_ready waits
    // until it is back.
    sshd.kill();
    let e = t.exec("true", T).unwrap_err();
    assert!(
        matches!(
            e,
            TargetError::Connect { .. } | TargetError::Disconnected { .. }
        ),
        "{e:?}"
    );
    let back = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        sshd.start_again();
        sshd
    });
    let start = Instant::now();
    t.wait_ready(Duration::from_secs(20)).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(600));
    let _sshd = back.join().unwrap();
    assert!(t.exec("true", T).unwrap().success());
}

#[test]
fn a_connection_cut_mid_command_is_an_error_not_a_result() {
    let mut sshd = Sshd::start();
    let t = Arc::new(target(&sshd));
    t.connect().unwrap();
    let t2 = t.clone();
    let running = std::thread::spawn(move || t2.exec("echo partial; sleep 20", T));
    std::thread::sleep(Duration::from_millis(500));
    sshd.kill();
    let r = running.join().unwrap();
    let e = r.unwrap_err();
    assert!(matches!(e, TargetError::Disconnected { .. }), "{e:?}");
    assert!(e.to_string().contains("sleep 20"), "{e}");
    sshd.start_again();
    assert!(t.exec("true", T).unwrap().success());
}

#[test]
fn a_broken_socket_is_replaced_transparently() {
    let sshd = Sshd::start();
    let t = target(&sshd);
    assert!(t.exec("true", T).unwrap().success());
    t.break_connection();
    assert_eq!(t.exec("echo fine", T).unwrap().stdout_str(), "fine\n");
    t.break_connection();
    assert!(t.list_dir("/").unwrap().iter().any(|e| e.name == "proc"));
}

fn endpoint(
    sshd: &Sshd,
    pinned: Option<certlab_lab::HostKey>,
) -> certlab_lab::inventory::SshEndpoint {
    certlab_lab::inventory::SshEndpoint {
        address: "127.0.0.1".to_string(),
        port: sshd.port,
        user: whoami(),
        key_file: sshd.client_key.clone(),
        host_key: pinned,
    }
}

/// The one host-key policy: the first connection records the key before
/// anything runs, later ones accept only that key, and a key pinned in
/// lab.toml wins over the recorded one.
#[test]
fn host_key_policy_records_on_first_use_then_refuses_another_key() {
    use certlab_lab::ssh::{HostKeyPolicy, HostKeyStore, MemoryHostKeys};
    let mut sshd = Sshd::start();
    let store = MemoryHostKeys::new();
    let policy = HostKeyPolicy::new(store.clone());
    let addr = format!("127.0.0.1:{}", sshd.port);
    let ep = endpoint(&sshd, None);

    // First use: recorded under (machine, host:port) as soon as it is seen.
    assert!(store.recorded("sut1", &addr).unwrap().is_none());
    let t = policy.ssh("sut1", &ep).unwrap();
    assert!(matches!(
        t.config().host_key,
        HostKeyCheck::TrustOnFirstUse(_)
    ));
    t.connect().unwrap();
    assert_eq!(
        store.recorded("sut1", &addr).unwrap(),
        Some(sshd.host_key.clone())
    );
    // Keyed by machine and address: another machine name is another record.
    assert!(store.recorded("sut2", &addr).unwrap().is_none());
    // Later connections check the recorded key.
    let t = policy.ssh("sut1", &ep).unwrap();
    assert!(matches!(t.config().host_key, HostKeyCheck::Recorded(_)));
    assert!(t.exec("true", T).unwrap().success());

    // The machine comes back with another key: refused, naming machine,
    // address and both fingerprints; the record is not replaced.
    let old = sshd.host_key.clone();
    sshd.kill();
    let fresh = new_key(sshd.dir.path(), "host_key_new");
    std::fs::rename(&fresh, sshd.dir.path().join("host_key")).unwrap();
    std::fs::rename(
        sshd.dir.path().join("host_key_new.pub"),
        sshd.dir.path().join("host_key.pub"),
    )
    .unwrap();
    let new = read_pub(&sshd.dir.path().join("host_key"));
    sshd.start_again();
    let e = policy
        .ssh("sut1", &ep)
        .unwrap()
        .exec("true", T)
        .unwrap_err();
    assert!(matches!(e, TargetError::HostKeyMismatch { .. }), "{e:?}");
    let msg = e.to_string();
    for part in ["sut1", addr.as_str(), "recorded in the lab store"] {
        assert!(msg.contains(part), "{part}: {msg}");
    }
    assert!(msg.contains(&old.fingerprint()), "{msg}");
    assert!(msg.contains(&new.fingerprint()), "{msg}");
    assert_eq!(store.recorded("sut1", &addr).unwrap(), Some(old.clone()));

    // A key pinned in lab.toml wins over the recorded one, both ways.
    let t = policy
        .ssh("sut1", &endpoint(&sshd, Some(new.clone())))
        .unwrap();
    assert!(t.exec("true", T).unwrap().success());
    let pinned_old = endpoint(&sshd, Some(old.clone()));
    store.record("sut3", &addr, &new).unwrap();
    let e = policy
        .ssh("sut3", &pinned_old)
        .unwrap()
        .exec("true", T)
        .unwrap_err();
    assert!(e.to_string().contains("pinned in lab.toml"), "{e}");
}

/// A key that cannot be recorded is not trusted: nothing runs.
#[test]
fn host_key_policy_refuses_when_the_key_cannot_be_recorded() {
    use certlab_lab::ssh::{HostKeyPolicy, HostKeyStore, HostKeyStoreError};
    struct Broken;
    impl HostKeyStore for Broken {
        fn recorded(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<certlab_lab::HostKey>, HostKeyStoreError> {
            Ok(None)
        }
        fn record(
            &self,
            _: &str,
            _: &str,
            _: &certlab_lab::HostKey,
        ) -> Result<(), HostKeyStoreError> {
            Err(HostKeyStoreError("disk full".to_string()))
        }
    }
    let sshd = Sshd::start();
    let policy = HostKeyPolicy::new(Arc::new(Broken));
    let e = policy
        .ssh("sut1", &endpoint(&sshd, None))
        .unwrap()
        .exec("true", T)
        .unwrap_err();
    assert!(matches!(e, TargetError::HostKeyUntrusted { .. }), "{e:?}");
}

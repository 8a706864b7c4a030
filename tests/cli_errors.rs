//! The CLI's error model: exit codes, the cause chain shown once, and no
//! secret of `--db`/`CERTLAB_DB` in any output (help, errors, logs).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may unwrap

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

const SECRET: &str = "secretpw";

fn certlab(args: &[&str], envs: &[(&str, &str)], data: &Path) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_certlab"));
    c.args(args)
        .env("CERTLAB_DATA_DIR", data)
        .env_remove("CERTLAB_DB")
        .env_remove("CERTLAB_LOG");
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("run certlab")
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A loopback port nothing listens on (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn help_never_shows_the_value_of_certlab_db() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("postgres://u:{SECRET}@127.0.0.1:1/x");
    for args in [
        &["runs", "list", "--help"][..],
        &["runs", "show", "--help"],
        &["certify", "--help"],
        &["lab", "power", "--help"],
        &["lab", "health", "--help"],
    ] {
        let o = certlab(args, &[("CERTLAB_DB", &url)], dir.path());
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
        let all = text(&o);
        assert!(all.contains("CERTLAB_DB"), "{args:?}: {all}");
        assert!(!all.contains(SECRET), "{args:?} shows the password: {all}");
    }
}

#[test]
fn a_failed_connection_names_the_redacted_url_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port();
    let with_userinfo = format!("postgres://u:{SECRET}@127.0.0.1:{port}/x");
    let with_param = format!("postgres://u@127.0.0.1:{port}/x?password={SECRET}");
    for url in [&with_userinfo, &with_param] {
        // From the environment and from --db, with debug logs on.
        let from_env = certlab(
            &["runs", "list"],
            &[("CERTLAB_DB", url), ("CERTLAB_LOG", "debug")],
            dir.path(),
        );
        let from_flag = certlab(
            &["runs", "show", "abc", "--db", url, "--format", "json"],
            &[("CERTLAB_LOG", "trace")],
            dir.path(),
        );
        for o in [from_env, from_flag] {
            let all = text(&o);
            assert_eq!(o.status.code(), Some(2), "{all}");
            assert!(!all.contains(SECRET), "the password leaked: {all}");
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains(&format!("127.0.0.1:{port}/x")),
                "names the store: {err}"
            );
            assert!(err.contains("***"), "shows where the password was: {err}");
            // The cause, not only "cannot connect".
            assert!(
                err.to_lowercase().contains("refused"),
                "shows the cause: {err}"
            );
            assert_eq!(
                err.matches("certlab: error:").count(),
                1,
                "one error line: {err}"
            );
        }
    }
}

#[test]
fn a_failed_query_shows_the_database_cause() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let db_s = db.to_str().unwrap();
    let o = certlab(&["runs", "list", "--db", db_s], &[], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // Break the store under certlab's feet.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{db_s}"))
            .await
            .unwrap();
        sqlx::query("DROP TABLE runs").execute(&mut c).await.ok();
        sqlx::query("ALTER TABLE runs RENAME TO runs_gone")
            .execute(&mut c)
            .await
            .ok();
        c.close().await.unwrap();
    });
    let o = certlab(&["runs", "list", "--db", db_s], &[], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("lab store query failed"), "{err}");
    assert!(
        err.contains("no such table"),
        "the sqlx cause is shown: {err}"
    );
}

#[test]
fn format_values_are_checked_per_command() {
    let dir = tempfile::tempdir().unwrap();
    // JUnit is a kabi check/diff format only.
    let o = certlab(&["runs", "list", "--format", "junit"], &[], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("possible values: human, json"),
        "{}",
        text(&o)
    );
    let o = certlab(&["kabi", "check", "--help"], &[], dir.path());
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("junit"),
        "{}",
        text(&o)
    );
    let o = certlab(&["--help"], &[], dir.path());
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("Exit codes"), "{help}");
    assert!(help.contains("130"), "{help}");
}

#[test]
fn runs_show_redacts_urls_in_recorded_text() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("lab.db");
    let db_s = db.to_str().unwrap().to_string();
    let id = "0190aaaa-0000-7000-8000-000000000001";
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = certlab_harness::Store::open(&db_s).await.unwrap();
        let now = time::OffsetDateTime::now_utc();
        store
            .create_run(&certlab_harness::NewRun {
                id: id.into(),
                plan_id: "server-basic".into(),
                plan_version: "1".into(),
                plan_digest: "sha256:00".into(),
                target: "local".into(),
                hostname: "h".into(),
                kernel: "k".into(),
                started: now,
                out_dir: Some(format!("/tmp/out?password={SECRET}")),
            })
            .await
            .unwrap();
        let reason = format!("lab store postgres://u:{SECRET}@db/x went away");
        store.mark_interrupted(id, now, &reason).await.unwrap();
        store.close().await;
    });
    for format in ["human", "json"] {
        for cmd in ["list", "show"] {
            let mut args = vec!["runs", cmd, "--db", &db_s, "--format", format];
            if cmd == "show" {
                args.insert(2, id);
            }
            let o = certlab(&args, &[], dir.path());
            let all = text(&o);
            assert_eq!(o.status.code(), Some(0), "{all}");
            assert!(!all.contains(SECRET), "{args:?} leaks: {all}");
        }
    }
    let o = certlab(&["runs", "show", id, "--db", &db_s], &[], dir.path());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("postgres://u:***@db/x went away"), "{out}");
}

/// `certlab … | head -1`: the reader goes away after one line. The command
/// ends as a Unix filter does (SIGPIPE, or exit 0 had it finished), with no
/// panic and no error on stderr.
#[test]
fn a_closed_stdout_ends_a_listing_quietly() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;

    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_certlab"))
        .args(["lab", "sim", "generate", "--machines", "10000"])
        .env("CERTLAB_DATA_DIR", data.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    // The reader is dropped here: the pipe's read end is closed while
    // certlab still has ~10,000 machines to write.
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!first.is_empty(), "one line was read");
    assert!(!stderr.contains("panicked"), "no panic: {stderr}");
    assert!(!stderr.contains("error"), "no error: {stderr}");
    assert!(
        out.status.signal() == Some(libc::SIGPIPE) || out.status.code() == Some(0),
        "ended by SIGPIPE (or finished): {:?}",
        out.status
    );
}

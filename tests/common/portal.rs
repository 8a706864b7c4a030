//! The `certlab` binary as the portal tests drive it: commands with their
//! output, and `certlab serve` on a port picked at run time.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn certlab(args: &[&str], data: &Path, stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certlab"));
    cmd.args(args)
        .env("CERTLAB_DATA_DIR", data)
        .env_remove("CERTLAB_DB")
        .env_remove("CERTLAB_KEY")
        .env_remove("CERTLAB_PORTAL_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("run certlab");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    child.wait_with_output().unwrap()
}

pub fn text(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

pub fn json_ok(args: &[&str], data: &Path, stdin: Option<&str>) -> Value {
    let o = certlab(args, data, stdin);
    assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {}", text(&o)))
}

/// `certlab portal org create NAME --format json`.
pub fn create_org(db: &str, data: &Path, name: &str) -> Value {
    json_ok(
        &[
            "portal", "org", "create", name, "--db", db, "--format", "json",
        ],
        data,
        None,
    )
}

/// `certlab portal user create EMAIL --org ORG --role ROLE --format json`,
/// with `--password-stdin` when a password is given.
pub fn create_user(
    db: &str,
    data: &Path,
    email: &str,
    org: &str,
    role: &str,
    password: Option<&str>,
) -> Value {
    let mut args = vec![
        "portal", "user", "create", email, "--org", org, "--role", role, "--db", db, "--format",
        "json",
    ];
    let stdin = password.map(|pw| format!("{pw}\n"));
    if stdin.is_some() {
        args.push("--password-stdin");
    }
    json_ok(&args, data, stdin.as_deref())
}

/// `certlab serve`, stopped (SIGTERM) when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
}

impl Server {
    pub fn start(db: &str, data: &Path, portal_data: &Path) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_certlab"))
            .args([
                "serve",
                "--db",
                db,
                "--listen",
                "127.0.0.1:0",
                "--data",
                portal_data.to_str().unwrap(),
            ])
            .env("CERTLAB_DATA_DIR", data)
            .env_remove("CERTLAB_DB")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start certlab serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .rsplit_once(' ')
            .map(|(_, url)| url.to_string())
            .unwrap_or_else(|| panic!("serve printed {line:?}"));
        assert!(base.starts_with("http://127.0.0.1:"), "{line:?}");
        Server { child, base }
    }

    /// SIGTERM, then the exit status (within 20 s).
    pub fn stop(&mut self) -> Option<i32> {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

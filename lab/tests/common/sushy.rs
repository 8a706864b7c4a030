//! sushy-tools in fake-driver mode over HTTP or HTTPS (a self-signed
//! certificate made with openssl) on 127.0.0.1 at a free port, from the venv
//! `scripts/sushy-venv` makes; killed on drop. One system, `node1`, powered
//! off. Fails (not skips) when the venv cannot be set up.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Sushy {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// The server certificate (PEM) when serving HTTPS.
    pub cert_pem: Option<Vec<u8>>,
}

impl Drop for Sushy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn repo_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if root.join("scripts/sushy-venv").exists() {
        root.to_path_buf()
    } else {
        root.join("..")
    }
}

pub fn venv() -> PathBuf {
    let script = repo_root().join("scripts/sushy-venv");
    let out = Command::new(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/sushy-venv failed ({}): sushy-tools is needed for these tests; \
         install python3 and python3-venv (scripts/bootstrap --test) and run scripts/sushy-venv",
        out.status
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

impl Sushy {
    /// Over plain HTTP.
    pub fn start() -> Sushy {
        Sushy::start_with(false)
    }

    /// Over HTTP, or over HTTPS with a fresh self-signed certificate for
    /// `IP:127.0.0.1`.
    pub fn start_with(tls: bool) -> Sushy {
        let venv = venv();
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut conf = format!(
            "SUSHY_EMULATOR_LISTEN_IP = '127.0.0.1'\n\
             SUSHY_EMULATOR_LISTEN_PORT = {port}\n\
             SUSHY_EMULATOR_FAKE_DRIVER = True\n\
             SUSHY_EMULATOR_STATE_DIR = '{}'\n\
             SUSHY_EMULATOR_FAKE_SYSTEMS = [{{'uuid': '27946b59-9e44-4fa7-8e91-f3527a1ef094', \
             'name': 'node1', 'power_state': 'Off', 'external_notifier': False, \
             'nics': [{{'mac': '00:5c:52:31:3a:9c', 'ip': '172.22.0.100'}}]}}]\n",
            dir.path().join("state").display()
        );
        let mut cert_pem = None;
        if tls {
            let cert = dir.path().join("cert.pem");
            let key = dir.path().join("key.pem");
            let st = Command::new("openssl")
                .args(["req", "-x509", "-newkey", "ec"])
                .args(["-pkeyopt", "ec_paramgen_curve:prime256v1"])
                .args(["-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
                .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
                .arg(&key)
                .arg("-out")
                .arg(&cert)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("openssl is needed for the HTTPS tests (apt-get install openssl)");
            assert!(st.success(), "openssl req failed");
            cert_pem = Some(std::fs::read(&cert).unwrap());
            conf.push_str(&format!(
                "SUSHY_EMULATOR_SSL_CERT = '{}'\nSUSHY_EMULATOR_SSL_KEY = '{}'\n",
                cert.display(),
                key.display()
            ));
        }
        let conf_path = dir.path().join("sushy.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let log = std::fs::File::create(dir.path().join("sushy.log")).unwrap();
        let child = Command::new(venv.join("bin/sushy-emulator"))
            .arg("--config")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot start sushy-emulator from scripts/sushy-venv's venv");
        let mut s = Sushy {
            child,
            port,
            dir,
            cert_pem,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", s.port)).is_ok() {
                return s;
            }
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!(
                    "sushy-emulator exited ({st}) before listening:\n{}",
                    s.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "sushy-emulator did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://…` or `https://…` of the service.
    pub fn url(&self) -> String {
        let scheme = if self.cert_pem.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sushy.log")).unwrap_or_default()
    }
}

//! [`Ssh`]: a system under test reached over SSH (libssh2 through `ssh2`).
//!
//! Blocking, like every [`Target`]. One SSH connection per target, opened on
//! first use and reopened after it breaks (the machine rebooted, sshd was
//! restarted). Commands run on their own channel in non-blocking mode so
//! that stdout and stderr are read together and the timeout is exact; a
//! command past its timeout is killed on the target (see [`wrap_command`])
//! and, when the channel does not close promptly, the TCP socket is shut
//! down so that nothing waits on a blocked close. Files go over SFTP.

use std::fmt;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, ErrorCode, MethodType, OpenFlags, OpenType, Session, Sftp};

mod host_key;
mod policy;

pub use host_key::HostKey;
pub use policy::{HostKeyPolicy, HostKeyStore, HostKeyStoreError, MemoryHostKeys};

use crate::inventory::expand_home;
use crate::local::MAX_STREAM_BYTES;
use crate::target::{shell_quote, DirEntry, ExecOutput, Target, TargetError};

/// libssh2's "would block".
const EAGAIN: i32 = -37;
/// libssh2's "timed out" (blocking mode with a session timeout).
const LIBSSH2_TIMEOUT: i32 = -9;
/// SFTP status codes.
const FX_NO_SUCH_FILE: i32 = 2;
const FX_PERMISSION_DENIED: i32 = 3;
const FX_NO_SUCH_PATH: i32 = 10;

/// How long a timed-out command's channel may take to close before the
/// connection is torn down instead.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Decides whether a host key seen for the first time is trusted:
/// called with the machine name, its address and the key. The lab store
/// records the key it accepts and answers from that record afterwards.
pub type TrustOnFirstUse = Arc<dyn Fn(&str, &str, &HostKey) -> bool + Send + Sync>;

/// How the server's host key is checked.
#[derive(Clone)]
pub enum HostKeyCheck {
    /// Only this key is accepted: it is pinned in `lab.toml`.
    Pinned(HostKey),
    /// Only this key is accepted: the lab store recorded it on first use.
    Recorded(HostKey),
    /// The first key is offered to the callback; once accepted, reconnects
    /// of the same [`Ssh`] must present the same key.
    TrustOnFirstUse(TrustOnFirstUse),
}

impl fmt::Debug for HostKeyCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostKeyCheck::Pinned(k) => f.debug_tuple("Pinned").field(k).finish(),
            HostKeyCheck::Recorded(k) => f.debug_tuple("Recorded").field(k).finish(),
            HostKeyCheck::TrustOnFirstUse(_) => f.write_str("TrustOnFirstUse"),
        }
    }
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct SshConfig {
    pub address: String,
    pub port: u16,
    pub user: String,
    /// Private key file (ed25519 recommended, OpenSSH format, no passphrase).
    pub key_file: PathBuf,
    pub host_key: HostKeyCheck,
    /// TCP connect, handshake and authentication together.
    pub connect_timeout: Duration,
    /// Each SFTP operation.
    pub op_timeout: Duration,
    /// SSH keepalive interval while a command runs.
    pub keepalive: Duration,
}

impl SshConfig {
    pub fn new(
        address: &str,
        port: u16,
        user: &str,
        key_file: &Path,
        host_key: HostKeyCheck,
    ) -> Self {
        SshConfig {
            address: address.to_string(),
            port,
            user: user.to_string(),
            key_file: key_file.to_path_buf(),
            host_key,
            connect_timeout: Duration::from_secs(15),
            op_timeout: Duration::from_secs(60),
            keepalive: Duration::from_secs(15),
        }
    }

    /// `host:port` (`[v6]:port`): where the key is checked, and with the
    /// machine name the key of the host-key record.
    pub fn addr(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}", self.address, self.port)
        } else {
            format!("{}:{}", self.address, self.port)
        }
    }
}

/// Which stream a chunk of command output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

struct Conn {
    sess: Session,
    /// A second handle on the session's socket, to shut it down.
    ctl: TcpStream,
    sftp: Option<Sftp>,
}

impl Conn {
    fn fd(&self) -> RawFd {
        self.ctl.as_raw_fd()
    }

    fn sftp(&mut self) -> Result<&Sftp, ssh2::Error> {
        if self.sftp.is_none() {
            self.sftp = Some(self.sess.sftp()?);
        }
        match &self.sftp {
            Some(s) => Ok(s),
            None => Err(ssh2::Error::from_errno(ErrorCode::Session(-1))),
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        // libssh2 frees channels and the session by talking to the peer; on
        // a dead or stuck peer that blocks. A shut socket makes it fail fast.
        let _ = self.ctl.shutdown(Shutdown::Both);
    }
}

/// A machine reached over SSH.
pub struct Ssh {
    name: String,
    cfg: SshConfig,
    conn: Mutex<Option<Conn>>,
    /// The host key accepted on the first connection.
    trusted: Mutex<Option<HostKey>>,
    agent: Option<String>,
}

impl fmt::Debug for Ssh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ssh")
            .field("name", &self.name)
            .field("address", &self.cfg.addr())
            .field("user", &self.cfg.user)
            .finish_non_exhaustive()
    }
}

enum ExecFail {
    /// Nothing ran on the target; safe to retry on a new connection.
    NotStarted(String),
    /// The connection broke while the command ran.
    Lost(String),
}

enum SftpFail {
    Status(ssh2::Error),
    Timeout,
    Transport(String),
}

fn classify(e: ssh2::Error) -> SftpFail {
    match e.code() {
        ErrorCode::SFTP(_) => SftpFail::Status(e),
        ErrorCode::Session(LIBSSH2_TIMEOUT) => SftpFail::Timeout,
        _ => SftpFail::Transport(e.to_string()),
    }
}

fn classify_io(e: std::io::Error) -> SftpFail {
    match e.kind() {
        std::io::ErrorKind::TimedOut => SftpFail::Timeout,
        _ => SftpFail::Transport(e.to_string()),
    }
}

fn is_eagain(e: &ssh2::Error) -> bool {
    e.code() == ErrorCode::Session(EAGAIN)
}

/// Waits until the session's socket is ready in the directions libssh2
/// asked for, or `max` passes.
#[allow(unsafe_code)]
fn wait_socket(sess: &Session, fd: RawFd, max: Duration) {
    let events = match sess.block_directions() {
        BlockDirections::Inbound | BlockDirections::None => libc::POLLIN,
        BlockDirections::Outbound => libc::POLLOUT,
        BlockDirections::Both => libc::POLLIN | libc::POLLOUT,
    };
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = max.as_millis().clamp(1, 1000) as libc::c_int;
    // SAFETY: poll(2) on one pollfd that lives on this stack frame.
    unsafe {
        libc::poll(&mut pfd, 1, ms);
    }
}

/// The command line sent to the target: `/bin/sh -c` runs `command` in its
/// own session (process group) with stdin from /dev/null, while a watchdog
/// reads the channel's stdin; when the channel closes (timeout, or the
/// connection is cut) the watchdog kills the whole group, so nothing of a
/// timed-out command is left running on the target.
pub fn wrap_command(command: &str) -> String {
    const WRAPPER: &str = r#"export LC_ALL=C
exec 3<&0 </dev/null
if command -v setsid >/dev/null 2>&1; then setsid /bin/sh -c "$1" 3<&- & else /bin/sh -c "$1" 3<&- & fi
p=$!
{ cat <&3 >/dev/null 2>&1; kill -9 -"$p" "$p" 2>/dev/null; } >/dev/null 2>&1 &
w=$!
exec 3<&-
wait "$p"; rc=$?
kill "$w" 2>/dev/null
exit "$rc""#;
    format!(
        "exec /bin/sh -c {} certlab {}",
        shell_quote(WRAPPER),
        shell_quote(command)
    )
}

impl Ssh {
    /// A target named `name` (the machine's name, used in messages). Nothing
    /// is connected until the first operation or [`Ssh::connect`].
    pub fn new(name: &str, cfg: SshConfig) -> Ssh {
        let trusted = match &cfg.host_key {
            HostKeyCheck::Pinned(k) | HostKeyCheck::Recorded(k) => Some(k.clone()),
            HostKeyCheck::TrustOnFirstUse(_) => None,
        };
        Ssh {
            name: name.to_string(),
            cfg,
            conn: Mutex::new(None),
            trusted: Mutex::new(trusted),
            agent: None,
        }
    }

    /// Declares a `certlab` binary on the target for `certlab agent …`.
    pub fn with_agent(mut self, path: &str) -> Ssh {
        self.agent = Some(path.to_string());
        self
    }

    pub fn config(&self) -> &SshConfig {
        &self.cfg
    }

    /// `host:port` of the target.
    pub fn address(&self) -> String {
        self.cfg.addr()
    }

    /// The host key accepted so far (pinned, or trusted on first use).
    pub fn host_key(&self) -> Option<HostKey> {
        lock(&self.trusted).clone()
    }

    /// Connects now (reconnecting if a connection is open).
    pub fn connect(&self) -> Result<(), TargetError> {
        let mut guard = lock(&self.conn);
        *guard = None;
        *guard = Some(self.open()?);
        Ok(())
    }

    /// Polls until SSH answers and authenticates, or `within` passes; for a
    /// machine that is booting. Host key and authentication failures are
    /// returned at once: waiting does not fix them.
    pub fn wait_ready(&self, within: Duration) -> Result<(), TargetError> {
        let deadline = Instant::now() + within;
        let mut pause = Duration::from_millis(100);
        loop {
            match self.connect() {
                Ok(()) => return Ok(()),
                Err(
                    e @ (TargetError::HostKeyMismatch { .. }
                    | TargetError::HostKeyUntrusted { .. }
                    | TargetError::Auth { .. }),
                ) => return Err(e),
                Err(e) => {
                    let now = Instant::now();
                    if now + pause >= deadline {
                        return Err(e);
                    }
                    tracing::debug!(target = %self.name, error = %e, "ssh not ready yet");
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// Closes the connection politely (the next operation reconnects).
    pub fn disconnect(&self) {
        if let Some(c) = lock(&self.conn).take() {
            c.sess.set_blocking(true);
            c.sess.set_timeout(1000);
            let _ = c.sess.disconnect(None, "certlab done", None);
        }
    }

    /// Whether a connection is open (it may still turn out to be dead).
    pub fn is_connected(&self) -> bool {
        lock(&self.conn).is_some()
    }

    /// Shuts the connection's socket down without telling the peer, as a
    /// network failure would. For tests of recovery.
    pub fn break_connection(&self) {
        if let Some(c) = lock(&self.conn).as_ref() {
            let _ = c.ctl.shutdown(Shutdown::Both);
        }
    }

    fn connect_err(&self, reason: impl Into<String>) -> TargetError {
        TargetError::Connect {
            target: self.name.clone(),
            address: self.cfg.addr(),
            reason: reason.into(),
        }
    }

    fn open(&self) -> Result<Conn, TargetError> {
        let deadline = Instant::now() + self.cfg.connect_timeout;
        let addrs: Vec<_> = (self.cfg.address.as_str(), self.cfg.port)
            .to_socket_addrs()
            .map_err(|e| self.connect_err(format!("cannot resolve: {e}")))?
            .collect();
        let mut last = "no address".to_string();
        let mut tcp = None;
        for a in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                last = format!("timed out after {:?}", self.cfg.connect_timeout);
                break;
            }
            match TcpStream::connect_timeout(&a, left) {
                Ok(s) => {
                    tcp = Some(s);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        let tcp = tcp.ok_or_else(|| self.connect_err(last))?;
        let _ = tcp.set_nodelay(true);
        let ctl = tcp
            .try_clone()
            .map_err(|e| self.connect_err(format!("socket: {e}")))?;
        let mut sess = Session::new().map_err(|e| self.connect_err(e.to_string()))?;
        sess.set_tcp_stream(tcp);
        sess.set_blocking(true);
        let ms = |d: Instant| {
            d.saturating_duration_since(Instant::now())
                .as_millis()
                .clamp(1, u128::from(u32::MAX)) as u32
        };
        sess.set_timeout(ms(deadline));
        let trusted = self.host_key();
        let prefs = match &trusted {
            Some(k) => k.methods(),
            None => "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256".to_string(),
        };
        let _ = sess.method_pref(MethodType::HostKey, &prefs);
        // The conn owns the socket from here: dropping it on error shuts it.
        let conn = Conn {
            sess,
            ctl,
            sftp: None,
        };
        conn.sess
            .clone()
            .handshake()
            .map_err(|e| self.connect_err(format!("ssh handshake: {e}")))?;
        let presented = conn
            .sess
            .host_key()
            .and_then(|(blob, _)| HostKey::from_blob(blob))
            .ok_or_else(|| self.connect_err("the server sent no host key"))?;
        match (&trusted, &self.cfg.host_key) {
            (Some(expected), _) => {
                if *expected != presented {
                    let trusted_as = match &self.cfg.host_key {
                        HostKeyCheck::Pinned(_) => "pinned in lab.toml",
                        HostKeyCheck::Recorded(_) => "recorded in the lab store",
                        HostKeyCheck::TrustOnFirstUse(_) => "trusted on first use",
                    };
                    return Err(TargetError::HostKeyMismatch {
                        target: self.name.clone(),
                        address: self.cfg.addr(),
                        trusted_as: trusted_as.to_string(),
                        expected: format!("{} {}", expected.algorithm(), expected.fingerprint()),
                        presented: format!("{} {}", presented.algorithm(), presented.fingerprint()),
                    });
                }
            }
            (None, HostKeyCheck::TrustOnFirstUse(cb)) => {
                if !cb(&self.name, &self.cfg.addr(), &presented) {
                    return Err(TargetError::HostKeyUntrusted {
                        target: self.name.clone(),
                        address: self.cfg.addr(),
                        presented: format!("{} {}", presented.algorithm(), presented.fingerprint()),
                    });
                }
                tracing::info!(target = %self.name, key = %presented.fingerprint(), "ssh host key trusted on first use");
                *lock(&self.trusted) = Some(presented);
            }
            (None, HostKeyCheck::Pinned(_) | HostKeyCheck::Recorded(_)) => {}
        }
        let key_file = expand_home(&self.cfg.key_file.to_string_lossy());
        let auth_err = |reason: String| TargetError::Auth {
            target: self.name.clone(),
            address: self.cfg.addr(),
            user: self.cfg.user.clone(),
            reason,
        };
        if !key_file.is_file() {
            return Err(auth_err(format!(
                "key file {} does not exist",
                key_file.display()
            )));
        }
        conn.sess.set_timeout(ms(deadline));
        conn.sess
            .userauth_pubkey_file(&self.cfg.user, None, &key_file, None)
            .map_err(|e| {
                if e.code() == ErrorCode::Session(LIBSSH2_TIMEOUT) {
                    self.connect_err(format!(
                        "timed out after {:?} while authenticating",
                        self.cfg.connect_timeout
                    ))
                } else {
                    auth_err(format!("key {}: {}", key_file.display(), e.message()))
                }
            })?;
        if !conn.sess.authenticated() {
            return Err(auth_err(format!(
                "key {} was not accepted",
                key_file.display()
            )));
        }
        let secs = u32::try_from(self.cfg.keepalive.as_secs().max(1)).unwrap_or(u32::MAX);
        conn.sess.set_keepalive(false, secs);
        tracing::debug!(target = %self.name, address = %self.cfg.addr(), "ssh connected");
        Ok(conn)
    }

    /// Runs `command` like [`Target::exec`], handing each chunk of output to
    /// `on_output` as it arrives.
    pub fn exec_streaming(
        &self,
        command: &str,
        timeout: Duration,
        on_output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<ExecOutput, TargetError> {
        let start = Instant::now();
        let mut guard = lock(&self.conn);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if guard.is_none() {
                *guard = Some(self.open()?);
            }
            let Some(conn) = guard.as_mut() else {
                continue;
            };
            match self.run(conn, command, start, timeout, on_output) {
                Ok((out, keep)) => {
                    if !keep {
                        *guard = None;
                    }
                    return Ok(out);
                }
                Err(ExecFail::NotStarted(reason)) => {
                    *guard = None;
                    if attempt < 2 && start.elapsed() < timeout {
                        tracing::debug!(target = %self.name, %reason, "ssh connection was dead; reconnecting");
                        continue;
                    }
                    return Err(TargetError::Disconnected {
                        target: self.name.clone(),
                        reason: format!("{}: cannot start `{command}`: {reason}", self.cfg.addr()),
                    });
                }
                Err(ExecFail::Lost(reason)) => {
                    *guard = None;
                    return Err(TargetError::Disconnected {
                        target: self.name.clone(),
                        reason: format!("{}: while running `{command}`: {reason}", self.cfg.addr()),
                    });
                }
            }
        }
    }

    /// One attempt at a command on an open connection. `Ok((output, keep))`:
    /// `keep` is false when the connection had to be torn down.
    fn run(
        &self,
        conn: &mut Conn,
        command: &str,
        start: Instant,
        timeout: Duration,
        on_output: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<(ExecOutput, bool), ExecFail> {
        let deadline = start + timeout;
        let sess = conn.sess.clone();
        let fd = conn.fd();
        sess.set_blocking(false);
        let wait = |d: Instant| {
            wait_socket(
                &sess,
                fd,
                d.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(200)),
            )
        };

        let mut channel = loop {
            match sess.channel_session() {
                Ok(c) => break c,
                Err(e) if is_eagain(&e) => {
                    if Instant::now() >= deadline {
                        return Err(ExecFail::NotStarted("timed out opening a channel".into()));
                    }
                    wait(deadline);
                }
                Err(e) => return Err(ExecFail::NotStarted(e.to_string())),
            }
        };
        let wrapped = wrap_command(command);
        loop {
            match channel.exec(&wrapped) {
                Ok(()) => break,
                Err(e) if is_eagain(&e) => {
                    if Instant::now() >= deadline {
                        let _ = conn.ctl.shutdown(Shutdown::Both);
                        return Err(ExecFail::NotStarted(
                            "timed out starting the command".into(),
                        ));
                    }
                    wait(deadline);
                }
                Err(e) => {
                    let _ = conn.ctl.shutdown(Shutdown::Both);
                    return Err(ExecFail::NotStarted(e.to_string()));
                }
            }
        }

        let mut out = Capture::default();
        let mut err = Capture::default();
        let mut buf = vec![0u8; 64 * 1024];
        let mut timed_out = false;
        loop {
            let mut progressed = false;
            let mut done = 0;
            for (stream, cap) in [(Stream::Stdout, &mut out), (Stream::Stderr, &mut err)] {
                let r = match stream {
                    Stream::Stdout => channel.read(&mut buf),
                    Stream::Stderr => channel.stderr().read(&mut buf),
                };
                match r {
                    Ok(0) => done += 1,
                    Ok(n) => {
                        progressed = true;
                        let chunk = buf.get(..n).unwrap_or_default();
                        on_output(stream, chunk);
                        cap.push(chunk);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        let _ = conn.ctl.shutdown(Shutdown::Both);
                        return Err(ExecFail::Lost(e.to_string()));
                    }
                }
            }
            if done == 2 {
                break;
            }
            // One stream saw the end (the other will on the next round),
            // or data came: libssh2 may hold more already read from the
            // socket, so polling the socket now could stall.
            if progressed || done > 0 || channel.eof() {
                continue;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                break;
            }
            let _ = sess.keepalive_send();
            wait(deadline);
        }

        let mut keep = true;
        let mut exit = None;
        if timed_out {
            // EOF on stdin makes the watchdog kill the command's group; the
            // channel then closes. If it does not, cut the connection.
            let grace = Instant::now() + CLOSE_GRACE;
            let mut eof_sent = false;
            let closed = loop {
                // Keep reading so the peer is never blocked on a full window.
                while matches!(channel.read(&mut buf), Ok(n) if n > 0) {}
                while matches!(channel.stderr().read(&mut buf), Ok(n) if n > 0) {}
                let step = if !eof_sent {
                    channel.send_eof().map(|()| eof_sent = true)
                } else if !channel.eof() {
                    // The remote end has not finished yet.
                    Err(ssh2::Error::from_errno(ErrorCode::Session(EAGAIN)))
                } else {
                    match channel.close().and_then(|()| channel.wait_close()) {
                        Ok(()) => break true,
                        Err(e) => Err(e),
                    }
                };
                match step {
                    Ok(()) => continue,
                    Err(e) if is_eagain(&e) => {}
                    Err(e) => {
                        tracing::debug!(target = %self.name, error = %e, "closing a timed-out channel failed");
                        break false;
                    }
                }
                if Instant::now() >= grace {
                    break false;
                }
                wait(grace);
            };
            if !closed {
                tracing::debug!(target = %self.name, "timed-out channel did not close; dropping the connection");
                let _ = conn.ctl.shutdown(Shutdown::Both);
                keep = false;
            }
        } else {
            // Generous: the command is finished, only the close handshake is left.
            let close_deadline = Instant::now() + Duration::from_secs(10).max(CLOSE_GRACE);
            loop {
                match channel.close().and_then(|()| channel.wait_close()) {
                    Ok(()) => break,
                    Err(e) if is_eagain(&e) => {
                        if Instant::now() >= close_deadline {
                            let _ = conn.ctl.shutdown(Shutdown::Both);
                            return Err(ExecFail::Lost("the channel did not close".into()));
                        }
                        wait(close_deadline);
                    }
                    Err(e) => {
                        let _ = conn.ctl.shutdown(Shutdown::Both);
                        return Err(ExecFail::Lost(e.to_string()));
                    }
                }
            }
            let signal = channel
                .exit_signal()
                .ok()
                .and_then(|s| s.exit_signal)
                .filter(|s| !s.is_empty());
            if signal.is_none() {
                exit = channel.exit_status().ok();
            }
        }
        // The channel is dropped here: closed, or its socket already shut.
        drop(channel);
        Ok((
            ExecOutput {
                exit,
                stdout: out.finish(),
                stderr: err.finish(),
                duration: start.elapsed(),
                timed_out,
            },
            keep,
        ))
    }

    /// One SFTP operation, retried once on a fresh connection when the
    /// connection (not the file) was the problem.
    fn sftp_op<T>(
        &self,
        op: &str,
        path: &str,
        mut f: impl FnMut(&Sftp) -> Result<T, SftpFail>,
    ) -> Result<T, TargetError> {
        let mut guard = lock(&self.conn);
        let mut attempt = 0;
        loop {
            attempt += 1;
            if guard.is_none() {
                *guard = Some(self.open()?);
            }
            let Some(conn) = guard.as_mut() else {
                continue;
            };
            conn.sess.set_blocking(true);
            let ms = self
                .cfg
                .op_timeout
                .as_millis()
                .clamp(1, u128::from(u32::MAX)) as u32;
            conn.sess.set_timeout(ms);
            let r = match conn.sftp() {
                Ok(sftp) => f(sftp),
                Err(e) => Err(classify(e)),
            };
            match r {
                Ok(v) => return Ok(v),
                Err(SftpFail::Status(e)) => return Err(self.status_error(op, path, e)),
                Err(SftpFail::Timeout) => {
                    *guard = None;
                    return Err(TargetError::Timeout {
                        target: self.name.clone(),
                        operation: format!("sftp {op} {path}"),
                        after: self.cfg.op_timeout,
                    });
                }
                Err(SftpFail::Transport(reason)) => {
                    *guard = None;
                    if attempt < 2 {
                        tracing::debug!(target = %self.name, %reason, "ssh connection was dead; reconnecting");
                        continue;
                    }
                    return Err(TargetError::Disconnected {
                        target: self.name.clone(),
                        reason: format!("{}: sftp {op} {path}: {reason}", self.cfg.addr()),
                    });
                }
            }
        }
    }

    fn status_error(&self, op: &str, path: &str, e: ssh2::Error) -> TargetError {
        match e.code() {
            ErrorCode::SFTP(FX_NO_SUCH_FILE | FX_NO_SUCH_PATH) => TargetError::NotFound {
                target: self.name.clone(),
                path: path.to_string(),
            },
            ErrorCode::SFTP(FX_PERMISSION_DENIED) => TargetError::PermissionDenied {
                target: self.name.clone(),
                path: path.to_string(),
            },
            _ => TargetError::Io {
                target: self.name.clone(),
                path: path.to_string(),
                source: std::io::Error::other(format!("sftp {op}: {}", e.message())),
            },
        }
    }

    /// Copies a remote file to a local path, streaming.
    pub fn get_file(&self, remote: &str, local: &Path) -> Result<u64, TargetError> {
        let local_err = |e: std::io::Error| TargetError::Io {
            target: "local".to_string(),
            path: local.display().to_string(),
            source: e,
        };
        let mut out = std::fs::File::create(local).map_err(local_err)?;
        self.sftp_op("get", remote, |sftp| {
            use std::io::Seek;
            let mut f = sftp.open(Path::new(remote)).map_err(classify)?;
            out.set_len(0).map_err(classify_io)?;
            out.rewind().map_err(classify_io)?;
            std::io::copy(&mut f, &mut out).map_err(classify_io)
        })
    }

    /// Copies a local file to the target, streaming, with permission bits `mode`.
    pub fn put_path(&self, local: &Path, remote: &str, mode: u32) -> Result<u64, TargetError> {
        let mut data = std::fs::File::open(local).map_err(|e| TargetError::Io {
            target: "local".to_string(),
            path: local.display().to_string(),
            source: e,
        })?;
        self.sftp_op("put", remote, |sftp| {
            use std::io::Seek;
            data.rewind().map_err(classify_io)?;
            let mut f = create(sftp, remote, mode)?;
            let n = std::io::copy(&mut data, &mut f).map_err(classify_io)?;
            finish_put(sftp, f, remote, mode)?;
            Ok(n)
        })
    }
}

fn create(sftp: &Sftp, remote: &str, mode: u32) -> Result<ssh2::File, SftpFail> {
    sftp.open_mode(
        Path::new(remote),
        OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
        i32::try_from(mode & 0o7777).unwrap_or(0o644),
        OpenType::File,
    )
    .map_err(classify)
}

fn finish_put(sftp: &Sftp, mut f: ssh2::File, remote: &str, mode: u32) -> Result<(), SftpFail> {
    f.flush().map_err(classify_io)?;
    f.close().map_err(classify)?;
    // The server applies its umask on create; set the bits exactly.
    sftp.setstat(
        Path::new(remote),
        ssh2::FileStat {
            size: None,
            uid: None,
            gid: None,
            perm: Some(mode & 0o7777),
            atime: None,
            mtime: None,
        },
    )
    .map_err(classify)
}

/// Output of one stream, bounded like [`crate::Local`]'s.
#[derive(Default)]
struct Capture {
    data: Vec<u8>,
    truncated: bool,
}

impl Capture {
    fn push(&mut self, chunk: &[u8]) {
        if self.data.len() + chunk.len() <= MAX_STREAM_BYTES {
            self.data.extend_from_slice(chunk);
        } else {
            self.truncated = true;
        }
    }

    fn finish(mut self) -> Vec<u8> {
        if self.truncated {
            self.data
                .extend_from_slice(b"\n[certlab: output truncated]\n");
        }
        self.data
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Drop for Ssh {
    fn drop(&mut self) {
        self.disconnect();
    }
}

impl Target for Ssh {
    fn name(&self) -> &str {
        &self.name
    }

    fn exec(&self, command: &str, timeout: Duration) -> Result<ExecOutput, TargetError> {
        self.exec_streaming(command, timeout, &mut |_, _| {})
    }

    fn read_file(&self, path: &str) -> Result<Vec<u8>, TargetError> {
        self.sftp_op("read", path, |sftp| {
            let mut f = sftp.open(Path::new(path)).map_err(classify)?;
            let mut data = Vec::new();
            f.read_to_end(&mut data).map_err(classify_io)?;
            Ok(data)
        })
    }

    fn list_dir(&self, path: &str) -> Result<Vec<DirEntry>, TargetError> {
        self.sftp_op("readdir", path, |sftp| {
            let raw = sftp.readdir(Path::new(path)).map_err(classify)?;
            let mut entries = Vec::with_capacity(raw.len());
            for (p, st) in raw {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let is_symlink = st.file_type().is_symlink();
                let is_dir = if is_symlink {
                    // Like Local: a link to a directory counts as one.
                    match sftp.stat(&p) {
                        Ok(t) => t.is_dir(),
                        Err(e) => match classify(e) {
                            SftpFail::Status(_) => false,
                            other => return Err(other),
                        },
                    }
                } else {
                    st.is_dir()
                };
                entries.push(DirEntry {
                    name,
                    is_dir,
                    is_symlink,
                });
            }
            entries.sort();
            Ok(entries)
        })
    }

    fn read_link(&self, path: &str) -> Result<String, TargetError> {
        self.sftp_op("readlink", path, |sftp| {
            sftp.readlink(Path::new(path))
                .map(|p| p.to_string_lossy().into_owned())
                .map_err(classify)
        })
    }

    fn put_file(&self, path: &str, data: &[u8], mode: u32) -> Result<(), TargetError> {
        self.sftp_op("write", path, |sftp| {
            let mut f = create(sftp, path, mode)?;
            f.write_all(data).map_err(classify_io)?;
            finish_put(sftp, f, path, mode)
        })
    }

    fn agent_path(&self) -> Option<String> {
        self.agent.clone()
    }

    /// One `lstat` round trip instead of the default's reads.
    fn exists(&self, path: &str) -> Result<bool, TargetError> {
        match self.sftp_op("lstat", path, |sftp| {
            sftp.lstat(Path::new(path)).map_err(classify)
        }) {
            Ok(_) => Ok(true),
            Err(TargetError::NotFound { .. }) => Ok(false),
            // Permission denied (a directory on the way may not be
            // searched) says nothing either way: the caller decides.
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_commands_quote_safely() {
        let w = wrap_command("echo 'a b' \"$HOME\"");
        assert!(w.starts_with("exec /bin/sh -c '"));
        assert!(w.ends_with(r#" certlab 'echo '\''a b'\'' "$HOME"'"#), "{w}");
    }
}

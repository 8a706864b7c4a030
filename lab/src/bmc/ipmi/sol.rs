//! Console capture over Serial-over-LAN: activate the SOL payload in a
//! session of its own, acknowledge every character packet, append the text
//! to a file.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::super::{BmcError, ConsoleCapture};
use super::Ipmi;

impl Ipmi {
    pub(super) async fn do_console(
        &self,
        out: PathBuf,
        duration: Option<Duration>,
    ) -> Result<ConsoleCapture, BmcError> {
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out)
            .await
            .map_err(|e| BmcError::Config {
                bmc: self.cfg.name.clone(),
                message: format!("cannot open {}: {e}", out.display()),
            })?;
        // SOL gets its own session so that other calls go on meanwhile.
        let mut slot = Some(self.open().await?);
        let activate = [0x01, 0x01, 0xC0, 0x00, 0x00, 0x00];
        match self
            .cmd_in(&mut slot, "activate sol", 0x06, 0x48, &activate)
            .await
        {
            Ok(_) => {}
            // 0x80: already active (an earlier console left it): take it over.
            Err(BmcError::InvalidResponse { message, .. }) if message.contains("0x80") => {
                let _ = self
                    .cmd_in(
                        &mut slot,
                        "deactivate sol",
                        0x06,
                        0x49,
                        &[0x01, 0x01, 0, 0, 0, 0],
                    )
                    .await;
                self.cmd_in(&mut slot, "activate sol", 0x06, 0x48, &activate)
                    .await?;
            }
            Err(e) => return Err(e),
        }
        let Some(mut s) = slot.take() else {
            return Err(self.invalid("sol session vanished".into()));
        };
        let end = duration.map(|d| Instant::now() + d);
        let mut bytes: u64 = 0;
        let mut last_seq: Option<u8> = None;
        let result = loop {
            let wait = match end {
                Some(end) => {
                    let now = Instant::now();
                    if now >= end {
                        break Ok(());
                    }
                    (end - now).min(Duration::from_millis(500))
                }
                None => Duration::from_millis(500),
            };
            match s.recv_sol(wait).await {
                Ok(None) => {}
                Ok(Some(p)) if p.len() >= 4 => {
                    let seq = p[0] & 0x0F;
                    let data = &p[4..];
                    if seq != 0 && !data.is_empty() {
                        if last_seq != Some(seq) {
                            if let Err(e) = file.write_all(data).await {
                                break Err(BmcError::Config {
                                    bmc: self.cfg.name.clone(),
                                    message: format!("writing {}: {e}", out.display()),
                                });
                            }
                            bytes += data.len() as u64;
                            last_seq = Some(seq);
                        }
                        let ack = [0x00, seq, data.len().min(255) as u8, 0x00];
                        if let Err(e) = s.send_sol(&ack).await {
                            break Err(self.session_error(e));
                        }
                    }
                }
                Ok(Some(_)) => {}
                Err(e) => break Err(self.session_error(e)),
            }
        };
        let _ = file.flush().await;
        let mut slot = Some(s);
        let _ = self
            .cmd_in(
                &mut slot,
                "deactivate sol",
                0x06,
                0x49,
                &[0x01, 0x01, 0, 0, 0, 0],
            )
            .await;
        if let Some(s) = slot {
            s.close().await;
        }
        result.map(|()| ConsoleCapture { path: out, bytes })
    }
}

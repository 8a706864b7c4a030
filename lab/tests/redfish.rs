//! The Redfish driver against real peers: sushy-tools (fake driver, over
//! HTTP and HTTPS) and the project's replay server serving recorded trees
//! of real BMCs and DMTF mockups; plus the fault cases of the retry policy.
//!
//! sushy-tools comes from the venv made by `scripts/sushy-venv`; the tests
//! fail (not skip) when it cannot be set up.
//!
//! `fixtures/redfish/expected.json` holds what reading each recorded tree
//! gives (systems, power, SEL entries, sensors, firmware, manufacturer, BMC
//! firmware); its values were checked against the trees by hand (counting
//! members, sensors and log entries in the JSON files), not taken on
//! trust. Regenerate it only on purpose, after a reviewed change of the
//! trees or of the driver: `CERTLAB_BLESS=1 cargo nextest run -p
//! certlab-lab --test redfish replay_reads_every_recorded_tree`, then
//! review the diff against the trees. The bless mode refuses to run when
//! `CI` is set, so CI always compares and never rewrites.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use certlab_lab::bmc::redfish::{AuthMode, Redfish, RedfishConfig};
use certlab_lab::bmc::replay::{Fault, Replay, ReplayOptions};
use certlab_lab::bmc::{
    Bmc, BmcError, BootDevice, BootOverride, CallOutcome, Guarded, Health, MemoryLog, PowerAction,
    PowerState, RetryPolicy,
};
use certlab_lab::inventory::{Secret, TlsMode};
use serde_json::Value;
use sha2::Digest;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/redfish")
}

fn client(url: &str, tls: TlsMode, user: &str, pass: &str) -> Redfish {
    let mut cfg = RedfishConfig::new("test-bmc", url, user, Secret::new(pass));
    cfg.tls = tls;
    cfg.timeout = Duration::from_secs(10);
    Redfish::new(cfg).unwrap()
}

// ---------------------------------------------------------------- replay

/// A replay server on a free loopback port; stopped when dropped.
struct ReplayServer {
    addr: SocketAddr,
    replay: Replay,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ReplayServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ReplayServer {
    async fn start(tree: &Path, opts: ReplayOptions) -> ReplayServer {
        let replay = Replay::load(tree, opts).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let r = replay.clone();
        let task = tokio::spawn(async move {
            let _ = r.run(listener).await;
        });
        ReplayServer { addr, replay, task }
    }

    fn url(&self) -> String {
        let scheme = if self.replay.cert_der().is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }
}

fn tree(name: &str) -> PathBuf {
    fixtures().join("trees").join(name)
}

fn tree_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(fixtures().join("trees"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What reading one tree gives; recorded in fixtures/redfish/expected.json
/// (see the file header for the bless mode).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Counts {
    systems: usize,
    power: String,
    /// `None`: not recorded in this (partial) tree.
    sel_entries: Option<usize>,
    sensors: Option<usize>,
    sensors_with_reading: Option<usize>,
    firmware: usize,
    manufacturer: Option<String>,
    bmc_firmware: Option<String>,
}

/// Whether to rewrite expected.json: only when `CERTLAB_BLESS=1` is asked
/// for explicitly, and never under CI (where it fails instead).
fn bless_mode(bless: Option<String>, ci: bool) -> bool {
    match bless.as_deref() {
        None | Some("") | Some("0") => false,
        Some("1") => {
            assert!(
                !ci,
                "CERTLAB_BLESS=1 under CI: expected.json is never rewritten in CI; unset CERTLAB_BLESS"
            );
            true
        }
        Some(other) => panic!("CERTLAB_BLESS={other:?}: set it to 1 to rewrite expected.json"),
    }
}

#[test]
fn bless_mode_needs_an_explicit_request_and_never_runs_in_ci() {
    assert!(!bless_mode(None, false));
    assert!(!bless_mode(Some("0".into()), false));
    assert!(bless_mode(Some("1".into()), false));
    assert!(std::panic::catch_unwind(|| bless_mode(Some("1".into()), true)).is_err());
    assert!(std::panic::catch_unwind(|| bless_mode(Some("yes".into()), false)).is_err());
    assert!(!bless_mode(None, true));
}

#[tokio::test]
async fn replay_reads_every_recorded_tree() {
    let expected_path = fixtures().join("expected.json");
    let bless = bless_mode(
        std::env::var("CERTLAB_BLESS").ok(),
        std::env::var_os("CI").is_some(),
    );
    let expected: BTreeMap<String, Counts> = if bless {
        BTreeMap::new()
    } else {
        serde_json::from_str(&std::fs::read_to_string(&expected_path).unwrap()).unwrap()
    };
    let mut got = BTreeMap::new();
    for name in tree_names() {
        let srv = ReplayServer::start(
            &tree(&name),
            ReplayOptions {
                power_delay: Duration::ZERO,
                ..ReplayOptions::default()
            },
        )
        .await;
        let rf = client(&srv.url(), TlsMode::Verify, "u", "p");
        let systems = rf
            .systems()
            .await
            .unwrap_or_else(|e| panic!("{name}: systems: {e}"));
        let power = match rf.power_status().await {
            Ok(p) => p.to_string(),
            // Only a BMC without any ComputerSystem may lack a power state.
            Err(BmcError::NotFound { .. }) if systems.is_empty() => "no system".to_string(),
            Err(e) => panic!("{name}: power: {e}"),
        };
        // Trees assembled from flat client-library fixtures (not cray-/dmtf-)
        // lack resources nobody recorded: a 404 there is "not recorded",
        // written down as null; full recordings must read without error.
        let partial = !(name.starts_with("cray-") || name.starts_with("dmtf-"));
        fn ok_or_unrecorded<T>(
            name: &str,
            what: &str,
            partial: bool,
            r: Result<T, BmcError>,
        ) -> Option<T> {
            match r {
                Ok(v) => Some(v),
                Err(BmcError::NotFound { .. } | BmcError::Unsupported { .. }) if partial => None,
                Err(e) => panic!("{name}: {what}: {e}"),
            }
        }
        let t = Instant::now();
        let sel = ok_or_unrecorded(&name, "sel", partial, rf.sel_since(None).await);
        let sel_time = t.elapsed();
        let sensors = ok_or_unrecorded(&name, "sensors", partial, rf.sensors().await);
        let id = rf
            .identity()
            .await
            .unwrap_or_else(|e| panic!("{name}: identity: {e}"));
        for e in sel.iter().flat_map(|p| &p.entries) {
            assert!(!e.id.is_empty(), "{name}: sel entry without id");
        }
        for s in sensors.iter().flatten() {
            assert!(!s.name.is_empty(), "{name}: sensor without a name: {s:?}");
        }
        eprintln!(
            "{name}: {} systems, power {power}, {:?} sel entries (read in {sel_time:?}), {:?} sensors, {} firmware",
            systems.len(),
            sel.as_ref().map(|p| p.entries.len()),
            sensors.as_ref().map(Vec::len),
            id.firmware.len()
        );
        got.insert(
            name.clone(),
            Counts {
                systems: systems.len(),
                power,
                sel_entries: sel.as_ref().map(|p| p.entries.len()),
                sensors: sensors.as_ref().map(Vec::len),
                sensors_with_reading: sensors
                    .as_ref()
                    .map(|s| s.iter().filter(|s| s.reading.is_some()).count()),
                firmware: id.firmware.len(),
                manufacturer: id.manufacturer,
                bmc_firmware: id.bmc_firmware,
            },
        );
    }
    if bless {
        std::fs::write(
            &expected_path,
            serde_json::to_string_pretty(&got).unwrap() + "\n",
        )
        .unwrap();
        return;
    }
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>(),
        "trees in fixtures/redfish/trees vs expected.json"
    );
    for (name, counts) in &got {
        assert_eq!(counts, &expected[name], "{name}");
    }
    // The recordings are not empty: every kind of data shows up somewhere.
    assert!(got.values().any(|c| c.sel_entries > Some(0)));
    assert!(got.values().any(|c| c.sensors_with_reading > Some(0)));
    for (name, c) in &got {
        if name.starts_with("cray-") || name.starts_with("dmtf-") {
            assert!(c.sel_entries.is_some() && c.sensors.is_some(), "{name}");
        }
    }
    assert!(got.values().any(|c| c.firmware > 0));
}

#[tokio::test]
async fn replay_power_is_stateful_and_the_log_grows() {
    let srv = ReplayServer::start(
        &tree("dmtf-public-rackmount1"),
        ReplayOptions {
            power_delay: Duration::from_millis(600),
            ..ReplayOptions::default()
        },
    )
    .await;
    let rf = client(&srv.url(), TlsMode::Verify, "u", "p");
    assert_eq!(rf.power_status().await.unwrap(), PowerState::On);
    rf.power(PowerAction::ForceOff).await.unwrap();
    assert_eq!(rf.power_status().await.unwrap(), PowerState::PoweringOff);
    let t = Instant::now();
    let s = rf
        .wait_for(PowerState::Off, Instant::now() + Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(s, PowerState::Off);
    eprintln!("MEASURE power off seen after {:?}", t.elapsed());
    // A deadline that passes names the last state seen.
    rf.power(PowerAction::On).await.unwrap();
    let e = rf
        .wait_for(PowerState::Off, Instant::now() + Duration::from_millis(300))
        .await
        .unwrap_err();
    assert!(matches!(e, BmcError::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("powering_on"), "{e}");

    let first = rf.sel_since(None).await.unwrap();
    let before = first.entries.len();
    srv.replay
        .inject_event(
            Health::Critical,
            "Memory",
            "Uncorrectable ECC error DIMM A1",
        )
        .unwrap();
    srv.replay
        .inject_event(
            Health::Warning,
            "Temperature",
            "CPU1 temperature above upper caution",
        )
        .unwrap();
    let next = rf.sel_since(Some(first.cursor.clone())).await.unwrap();
    assert_eq!(next.entries.len(), 2, "{:?}", next.entries);
    assert_eq!(next.entries[0].severity, Health::Critical);
    assert_eq!(next.entries[0].sensor_type.as_deref(), Some("Memory"));
    assert!(next.entries[0].timestamp.is_some());
    assert_eq!(
        next.entries[1].message,
        "CPU1 temperature above upper caution"
    );
    let again = rf.sel_since(Some(next.cursor.clone())).await.unwrap();
    assert!(again.entries.is_empty());
    assert_eq!(rf.sel_since(None).await.unwrap().entries.len(), before + 2);
    rf.sel_clear().await.unwrap();
    assert!(rf.sel_since(None).await.unwrap().entries.is_empty());
}

#[tokio::test]
async fn replay_synthesizes_a_sel_for_systems_without_one() {
    // The Huawei iBMC payloads record no LogServices; the replay adds an
    // empty SEL that then grows.
    let srv = ReplayServer::start(&tree("huawei-ibmc"), ReplayOptions::default()).await;
    let rf = client(&srv.url(), TlsMode::Verify, "u", "p");
    let page = rf.sel_since(None).await.unwrap();
    assert!(page.entries.is_empty());
    srv.replay
        .inject_event(Health::Ok, "Processor", "Presence detected")
        .unwrap();
    let page2 = rf.sel_since(Some(page.cursor)).await.unwrap();
    assert_eq!(page2.entries.len(), 1);
}

#[tokio::test]
async fn replay_tls_modes_and_auth() {
    let srv = ReplayServer::start(
        &tree("dmtf-public-tower"),
        ReplayOptions {
            power_delay: Duration::ZERO,
            auth: Some(("admin".to_string(), Secret::new("s3cret-pw"))),
            tls: true,
        },
    )
    .await;
    let pin = srv.replay.cert_sha256().unwrap();
    let url = srv.url();
    assert!(url.starts_with("https://"));

    let ok = client(&url, TlsMode::PinSha256(pin), "admin", "s3cret-pw");
    assert_eq!(ok.power_status().await.unwrap(), PowerState::On);
    let ok = client(&url, TlsMode::Insecure, "admin", "s3cret-pw");
    ok.identity().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, srv.replay.cert_pem().unwrap()).unwrap();
    let ok = client(&url, TlsMode::CaFile(ca), "admin", "s3cret-pw");
    ok.power_status().await.unwrap();

    let e = client(&url, TlsMode::Verify, "admin", "s3cret-pw")
        .power_status()
        .await
        .unwrap_err();
    assert!(matches!(e, BmcError::Tls { .. }), "{e}");
    assert!(!e.is_retryable());
    let e = client(&url, TlsMode::PinSha256([7; 32]), "admin", "s3cret-pw")
        .power_status()
        .await
        .unwrap_err();
    assert!(matches!(e, BmcError::Tls { .. }), "{e}");

    // Redfish session auth.
    let mut cfg = RedfishConfig::new("sess", url.clone(), "admin", Secret::new("s3cret-pw"));
    cfg.tls = TlsMode::Insecure;
    cfg.auth = AuthMode::Session;
    let rf = Redfish::new(cfg).unwrap();
    assert_eq!(rf.power_status().await.unwrap(), PowerState::On);
    rf.logout().await.unwrap();
}

// ---------------------------------------------------------------- faults

fn fast_policy(deadline: Duration) -> RetryPolicy {
    RetryPolicy {
        deadline,
        attempt_timeout: Duration::from_millis(800),
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_millis(400),
        min_gap: Duration::from_millis(20),
        ..RetryPolicy::default()
    }
}

#[tokio::test]
async fn fault_bmc_that_does_not_answer_times_out_retryably_and_gives_up_at_the_deadline() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sink_task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    struct Abort(tokio::task::JoinHandle<()>);
    impl Drop for Abort {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let _guard = Abort(sink_task);

    let log = MemoryLog::new();
    let rf = client(&format!("http://{addr}"), TlsMode::Verify, "u", "p");
    let g = Guarded::new(rf, fast_policy(Duration::from_secs(3)), log.clone());
    let t = Instant::now();
    let e = g.power_status().await.unwrap_err();
    let took = t.elapsed();
    assert!(matches!(e, BmcError::GaveUp { .. }), "{e}");
    assert!(matches!(e.root(), BmcError::Timeout { .. }), "{e}");
    assert!(e.root().is_retryable());
    assert!(
        took <= Duration::from_millis(3500),
        "gave up after {took:?}"
    );
    assert!(
        took >= Duration::from_millis(1500),
        "gave up early, after {took:?}"
    );
    let recs = log.records();
    assert!(recs.len() >= 2, "{recs:?}");
    assert!(recs
        .iter()
        .all(|r| matches!(&r.outcome, CallOutcome::Failed { kind, .. } if kind == "timeout")));
}

#[tokio::test]
async fn fault_wrong_password_is_fatal_and_not_retried() {
    let srv = ReplayServer::start(
        &tree("cray-OpenBMC-stock"),
        ReplayOptions {
            auth: Some(("root".to_string(), Secret::new("0penBmc"))),
            ..ReplayOptions::default()
        },
    )
    .await;
    let log = MemoryLog::new();
    let rf = client(&srv.url(), TlsMode::Verify, "root", "wrong-horse-battery");
    let g = Guarded::new(rf, fast_policy(Duration::from_secs(10)), log.clone());
    let t = Instant::now();
    let e = g.power_status().await.unwrap_err();
    assert!(matches!(e, BmcError::Auth { .. }), "{e}");
    assert!(!e.is_retryable());
    eprintln!("MEASURE wrong password refused after {:?}", t.elapsed());
    let msg = format!("{e} {e:?}");
    assert!(msg.contains("authentication failed"), "{msg}");
    assert!(
        !msg.contains("wrong-horse-battery"),
        "password leaked: {msg}"
    );
    assert_eq!(log.records().len(), 1, "{:?}", log.records());
    // Neither the config's Debug nor the driver's shows the password.
    let cfg = RedfishConfig::new("x", srv.url(), "root", Secret::new("wrong-horse-battery"));
    assert!(!format!("{cfg:?}").contains("wrong-horse-battery"));
    assert!(!format!("{:?}", g.inner()).contains("wrong-horse-battery"));
}

#[tokio::test]
async fn fault_5xx_twice_then_success_is_retried() {
    let srv = ReplayServer::start(&tree("cray-Gigabyte"), ReplayOptions::default()).await;
    srv.replay
        .push_faults([Fault::Status(500), Fault::Status(500)]);
    let log = MemoryLog::new();
    let rf = client(&srv.url(), TlsMode::Verify, "u", "p");
    let g = Guarded::new(rf, fast_policy(Duration::from_secs(10)), log.clone());
    let s = g.power_status().await.unwrap();
    assert!(matches!(s, PowerState::On | PowerState::Off));
    let recs = log.records();
    let kinds: Vec<String> = recs
        .iter()
        .map(|r| match &r.outcome {
            CallOutcome::Ok => "ok".to_string(),
            CallOutcome::Failed { kind, .. } => kind.clone(),
            CallOutcome::CircuitOpen => "open".to_string(),
        })
        .collect();
    assert_eq!(kinds, ["server_5xx", "server_5xx", "ok"]);
    assert_eq!(recs[2].attempt, 3);
    assert!(recs[1].started >= recs[0].started);
}

#[tokio::test]
async fn circuit_breaker_opens_after_repeated_failures() {
    let srv = ReplayServer::start(&tree("cray-Intel"), ReplayOptions::default()).await;
    srv.replay.push_faults([Fault::Status(503); 6]);
    let log = MemoryLog::new();
    let rf = client(&srv.url(), TlsMode::Verify, "u", "p");
    let policy = RetryPolicy {
        breaker_threshold: 3,
        breaker_cooldown: Duration::from_secs(60),
        ..fast_policy(Duration::from_secs(10))
    };
    let g = Guarded::new(rf, policy, log.clone());
    let e = g.power_status().await.unwrap_err();
    assert!(matches!(e, BmcError::CircuitOpen { .. }), "{e}");
    let served = srv.replay.request_count();
    let e = g.identity().await.unwrap_err();
    assert!(matches!(e, BmcError::CircuitOpen { .. }), "{e}");
    assert_eq!(
        srv.replay.request_count(),
        served,
        "an open breaker sends nothing"
    );
}

// ---------------------------------------------------------------- sushy-tools

#[path = "common/sushy.rs"]
mod sushy;
use sushy::Sushy;

/// The DER bytes of the HTTPS certificate sushy serves.
fn cert_der(s: &Sushy) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject;
    let pem = s.cert_pem.as_ref().expect("sushy serves HTTPS");
    rustls::pki_types::CertificateDer::from_pem_slice(pem)
        .unwrap()
        .as_ref()
        .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sushy_power_cycle_and_boot_override() {
    let sushy = Sushy::start();
    let log = MemoryLog::new();
    let rf = client(&sushy.url(), TlsMode::Verify, "admin", "password");
    let g = Guarded::new(rf, RetryPolicy::default(), log.clone());

    assert_eq!(g.power_status().await.unwrap(), PowerState::Off);
    // A power cycle round trip: on, wait, off, wait (sushy applies each
    // change after a random 1-11 s).
    let t = Instant::now();
    g.power(PowerAction::On).await.unwrap();
    g.wait_for(PowerState::On, Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    let on = t.elapsed();
    g.power(PowerAction::ForceOff).await.unwrap();
    g.wait_for(PowerState::Off, Instant::now() + Duration::from_secs(30))
        .await
        .unwrap();
    eprintln!(
        "sushy: power on took {on:?}, round trip on+off {:?}",
        t.elapsed()
    );

    g.set_boot(BootOverride {
        device: BootDevice::Pxe,
        once: true,
    })
    .await
    .unwrap();
    // sushy-tools' fake driver records the target but reports "Continuous"
    // whatever was asked (a quirk real BMCs share: some ignore Once).
    let (target, enabled) = g.inner().boot_override().await.unwrap();
    assert_eq!(target, "Pxe");
    assert!(enabled == "Once" || enabled == "Continuous", "{enabled}");
    g.set_boot(BootOverride {
        device: BootDevice::Disk,
        once: false,
    })
    .await
    .unwrap();
    assert_eq!(g.inner().boot_override().await.unwrap().0, "Hdd");

    // sushy-tools has no LogServices: unsupported, a fatal (not retried)
    // answer, measured anyway.
    let t = Instant::now();
    let e = g.sel_since(None).await.unwrap_err();
    eprintln!(
        "sushy: sel read (unsupported) answered in {:?}",
        t.elapsed()
    );
    assert!(matches!(e, BmcError::Unsupported { .. }), "{e}");
    let id = g.identity().await.unwrap();
    assert!(
        id.bmc_firmware.is_some()
            || id.manufacturer.is_some()
            || id.model.is_some()
            || id.serial.is_some()
            || id.bios_version.is_some(),
        "{id:?}"
    );
    g.sensors().await.unwrap();
    assert!(log.records().iter().all(|r| r.bmc == "test-bmc"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sushy_https_insecure_and_pin_work_verify_refuses() {
    let sushy = Sushy::start_with(true);
    let pin: [u8; 32] = sha2::Sha256::digest(cert_der(&sushy)).into();
    let url = sushy.url();

    let rf = client(&url, TlsMode::Insecure, "admin", "password");
    assert_eq!(rf.power_status().await.unwrap(), PowerState::Off);
    let rf = client(&url, TlsMode::PinSha256(pin), "admin", "password");
    assert_eq!(rf.power_status().await.unwrap(), PowerState::Off);

    let e = client(&url, TlsMode::Verify, "admin", "password")
        .power_status()
        .await
        .unwrap_err();
    assert!(matches!(e, BmcError::Tls { .. }), "{e}");
    let mut wrong = pin;
    wrong[0] ^= 0xff;
    let e = client(&url, TlsMode::PinSha256(wrong), "admin", "password")
        .power_status()
        .await
        .unwrap_err();
    assert!(matches!(e, BmcError::Tls { .. }), "{e}");
    assert!(e.to_string().contains("does not match"), "{e}");
}

#[test]
fn fixture_provenance_is_recorded() {
    let prov = std::fs::read_to_string(fixtures().join("PROVENANCE.tsv")).unwrap();
    assert!(prov.contains("DMTF/Redfish-Publications"));
    assert!(prov.contains("Cray-HPE/csm-redfish-interface-emulator"));
    let _: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures().join("expected.json")).unwrap())
            .unwrap();
}

/// The public decoders (`redfish::decode`, what the fuzz targets drive)
/// read real resources as the client does.
#[test]
fn decoders_read_real_resources_without_a_bmc() {
    use certlab_lab::bmc::redfish::decode;
    let read = |rel: &str| -> Value {
        serde_json::from_slice(&std::fs::read(tree("cray-Gigabyte").join(rel)).unwrap()).unwrap()
    };
    let (e, cursor) = decode::log_entry(&read(
        "Systems/Self/LogServices/BIOS/Entries/321/index.json",
    ));
    assert_eq!(e.id, "321");
    assert_eq!(e.severity, Health::Ok);
    assert_eq!(
        e.sensor_type.as_deref(),
        Some("BaseOSBoot/InstallationStatus")
    );
    assert_eq!(e.message, "0x06FFFF");
    assert_eq!(e.timestamp.map(|t| t.unix_timestamp()), Some(1_646_856_183));
    assert!(cursor.is_some_and(|c| c.0.ends_with("/321")));
    let thermal = decode::sensors_from_thermal(&read("Chassis/Self/Thermal/index.json"));
    assert_eq!(thermal.len(), 20);
    assert!(thermal.iter().all(|s| s.sensor_type == "Temperature"));
    let body = r#"{"error":{"code":"Base.1.8.GeneralError","message":"A general error has occurred.","@Message.ExtendedInfo":[{"Message":"The property Foo is unknown."}]}}"#;
    assert_eq!(
        decode::error_message(body).as_deref(),
        Some("The property Foo is unknown.")
    );
    assert_eq!(
        decode::power_state(&serde_json::json!({"PowerState": "PoweringOn"})),
        Some(PowerState::PoweringOn)
    );
    assert_eq!(
        decode::power_state(&serde_json::json!({"PowerState": 7})),
        None
    );
}

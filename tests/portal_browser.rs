//! The portal in a real browser: headless Chromium driven through
//! chromedriver's W3C WebDriver protocol (plain HTTP + JSON, spoken here
//! with reqwest). A vendor logs in and uploads a bundle made by
//! `certify --local` with the upload form, logs out; a reviewer logs in,
//! starts the review and approves it with the submission page's form; then
//! the public list's search finds the certification and its page shows what
//! was certified. The reviewer also queues a job on the lab dashboard and
//! watches a run's events arrive live on its page. The portal runs as `certlab serve` on a port picked at run
//! time, on PostgreSQL with a password in its URL, logging at debug level:
//! afterwards its whole log is searched for every secret the flow used.
//!
//! Chromium and chromedriver are Debian's `chromium` and `chromium-driver`,
//! installed by `scripts/bootstrap --test`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use std::os::unix::process::CommandExt;

mod common;

/// The key W3C WebDriver puts an element reference under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

use common::portal::{certlab, json_ok, text};

/// The absolute path of `name` on PATH, or a loud failure naming what installs it.
fn tool(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not on PATH: the browser test needs Debian's chromium and \
                 chromium-driver — run scripts/bootstrap --test"
            )
        })
}

/// A child process killed (and reaped) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// A child leading its own process group: the whole group is killed (and
/// the child reaped) when dropped.
struct Group(Child);

impl Group {
    fn kill(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.wait();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `certlab serve` with its stderr (the log) going to a file.
struct Server {
    proc: Proc,
    base: String,
}

impl Server {
    /// `serve` with `--data portal_data`; its working directory, HOME,
    /// TMPDIR and CERTLAB_DATA_DIR are the (empty) folders under `elsewhere`.
    fn start(db: &str, elsewhere: &Path, portal_data: &Path, log: &Path) -> Server {
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
            .env("CERTLAB_DATA_DIR", elsewhere.join("data"))
            .env("HOME", elsewhere.join("home"))
            .env("TMPDIR", elsewhere.join("tmp"))
            .current_dir(elsewhere.join("cwd"))
            .env("CERTLAB_LOG", "debug")
            .env_remove("CERTLAB_DB")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("start certlab serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let proc = Proc(child);
        let base = line
            .trim()
            .rsplit_once(' ')
            .map(|(_, url)| url.to_string())
            .unwrap_or_else(|| {
                panic!(
                    "serve printed {line:?}; its log:\n{}",
                    std::fs::read_to_string(log).unwrap_or_default()
                )
            });
        assert!(base.starts_with("http://127.0.0.1:"), "{line:?}");
        Server { proc, base }
    }

    /// SIGTERM, then the exit status (within 20 s).
    fn stop(&mut self) -> Option<i32> {
        let child = &mut self.proc.0;
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A free loopback port (bound, read, released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver and one headless Chromium session. Dropping it deletes the
/// session (which ends Chromium) and kills chromedriver.
struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`
    session: String,
    driver: Group,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let chromium = tool("chromium");
        let chromedriver = tool("chromedriver");
        let port = free_port();
        // its own process group, which Chromium inherits: killed as one
        let mut child = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        let stderr = child.stderr.take();
        let driver = Group(child);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        // chromedriver answers /status once it listens
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                let v: Value = r.json().await.unwrap();
                if v["value"]["ready"] == true {
                    break;
                }
            }
            if Instant::now() > deadline {
                let mut err = String::new();
                if let Some(mut s) = stderr {
                    let _ = s.read_to_string(&mut err);
                }
                panic!("chromedriver on port {port} not ready after 30 s: {err}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                // root in CI: no sandbox; small /dev/shm in containers
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--no-first-run", "--disable-crash-reporter",
                         format!("--user-data-dir={}", profile.path().display())],
            },
        }}});
        let r = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "new WebDriver session: {status} {v}");
        let id = v["value"]["sessionId"].as_str().unwrap().to_string();
        Browser {
            http,
            session: format!("{base}/session/{id}"),
            driver,
            _profile: profile,
        }
    }

    /// One WebDriver command; its `value`, or a failure naming the command.
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(
            status.is_success(),
            "WebDriver {method} {path}: {status} {v}"
        );
        v["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    /// The first element `css` selects, or `None` on any WebDriver error.
    async fn try_find(&self, css: &str) -> Option<String> {
        let r = self
            .http
            .post(format!("{}/element", self.session))
            .json(&json!({"using": "css selector", "value": css}))
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        let v: Value = r.json().await.ok()?;
        v["value"][ELEMENT].as_str().map(str::to_string)
    }

    async fn count(&self, css: &str) -> usize {
        self.cmd(
            reqwest::Method::POST,
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .await
        .as_array()
        .unwrap()
        .len()
    }

    async fn type_into(&self, css: &str, keys: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/value"),
            Some(json!({"text": keys})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{e}/click"),
            Some(json!({})),
        )
        .await;
    }

    /// Clicks what leads to another page and waits until the browser shows
    /// it: the old document's root element goes stale.
    async fn click_nav(&self, css: &str) {
        let old = self.find("html").await;
        self.click(css).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        // while the next document loads there may be no root element at all
        while self.try_find("html").await.is_none_or(|e| e == old) {
            assert!(
                Instant::now() < deadline,
                "clicking {css} led to no new page within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The visible text of the first element `css` selects. A page that
    /// rewrites itself (the lab page's live updates) can replace the
    /// element between finding and reading it: then it is found again.
    async fn text(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let e = self.find(css).await;
            let r = self
                .http
                .get(format!("{}/element/{e}/text", self.session))
                .send()
                .await
                .unwrap();
            let status = r.status();
            let v: Value = r.json().await.unwrap();
            if status.is_success() {
                return v["value"].as_str().unwrap().to_string();
            }
            let stale = v["value"]["error"] == "stale element reference";
            assert!(
                stale && Instant::now() < deadline,
                "WebDriver GET text of {css}: {status} {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn attr(&self, css: &str, name: &str) -> String {
        let e = self.find(css).await;
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{e}/attribute/{name}"),
            None,
        )
        .await
        .as_str()
        .unwrap_or("")
        .to_string()
    }

    async fn cookie(&self, name: &str) -> String {
        self.cmd(reqwest::Method::GET, &format!("/cookie/{name}"), None)
            .await["value"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn login(&self, base: &str, email: &str, password: &str) {
        self.goto(&format!("{base}/login")).await;
        self.type_into("input[name=email]", email).await;
        self.type_into("input[name=password]", password).await;
        self.click_nav("form[action='/login'] button[type=submit]")
            .await;
        assert_eq!(self.url().await, format!("{base}/submissions"));
        let me = self.text("nav .me").await;
        assert!(me.starts_with(email), "logged in as {email}: {me}");
    }

    async fn logout(&self, base: &str) {
        self.click_nav("form[action='/logout'] button[type=submit]")
            .await;
        assert_eq!(self.url().await, format!("{base}/"));
        assert_eq!(self.count("nav .me").await, 0, "logged out");
        assert_eq!(self.text("nav a[href='/login']").await, "Log in");
    }

    /// Ends the session (and Chromium), then chromedriver.
    async fn quit(mut self) {
        let r = self.http.delete(&self.session).send().await.unwrap();
        assert!(r.status().is_success(), "delete session: {}", r.status());
        self.driver.kill();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vendor_uploads_reviewer_approves_and_search_finds_it_in_chromium() {
    tool("chromium");
    tool("chromedriver");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pg = common::pg::TempDb::create().await;
    // trust auth ignores a password: one is added (when the URL has none) to
    // be looked for in the log
    let mut url = reqwest::Url::parse(&pg.url).unwrap();
    if url.password().is_none() {
        url.set_password(Some("db-pw-7f3a9c-never-logged")).unwrap();
    }
    let db_password = url.password().unwrap().to_string();
    let db = url.to_string();

    // a bundle of this machine, signed by a fresh key
    let keys = data.join("keys");
    let o = certlab(&["keygen", "--out", keys.to_str().unwrap()], &data, None);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = dir.path().join("out");
    let o = certlab(
        &[
            "certify",
            "--local",
            "--out",
            out.to_str().unwrap(),
            "--db",
            &db,
            "--format",
            "json",
        ],
        &data,
        None,
    );
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "certify reaches a verdict: {}",
        text(&o)
    );
    let record: Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    let bundle = out.join("bundle.tar");

    // accounts and the key, through the CLI
    let vendor_pw = "vendor-pw-1c8e2b-never-logged";
    let reviewer_pw = "reviewer-pw-94d0aa-never-logged";
    let dbf = ["--db", db.as_str(), "--format", "json"];
    let with = |args: &[&'static str]| -> Vec<String> {
        args.iter()
            .map(|s| s.to_string())
            .chain(dbf.iter().map(|s| s.to_string()))
            .collect()
    };
    let run = |args: Vec<String>, stdin: Option<&str>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        json_ok(&args, &data, stdin)
    };
    run(with(&["portal", "org", "create", "Acme Systems"]), None);
    run(with(&["portal", "org", "create", "certlab lab"]), None);
    let vendor = run(
        with(&[
            "portal",
            "user",
            "create",
            "vendor@acme.example",
            "--org",
            "Acme Systems",
            "--role",
            "vendor",
            "--password-stdin",
        ]),
        Some(&format!("{vendor_pw}\n")),
    );
    let reviewer = run(
        with(&[
            "portal",
            "user",
            "create",
            "reviewer@lab.example",
            "--org",
            "certlab lab",
            "--role",
            "reviewer",
            "--password-stdin",
        ]),
        Some(&format!("{reviewer_pw}\n")),
    );
    let pubkey = keys.join("certlab-signing.pub");
    let mut key_args = with(&["portal", "key", "add", "--org", "Acme Systems"]);
    key_args.insert(5, pubkey.to_str().unwrap().to_string());
    run(key_args, None);

    let log = dir.path().join("serve.log");
    let elsewhere = dir.path().join("elsewhere");
    for d in ["data", "home", "tmp", "cwd"] {
        std::fs::create_dir_all(elsewhere.join(d)).unwrap();
    }
    let portal_data = dir.path().join("portal");
    let mut server = Server::start(&db, &elsewhere, &portal_data, &log);
    let base = server.base.clone();
    let browser = Browser::start().await;
    let mut secrets: Vec<(String, String)> = vec![
        ("database password".into(), db_password.clone()),
        ("vendor password".into(), vendor_pw.into()),
        ("reviewer password".into(), reviewer_pw.into()),
        (
            "vendor token".into(),
            vendor["token"].as_str().unwrap().into(),
        ),
        (
            "reviewer token".into(),
            reviewer["token"].as_str().unwrap().into(),
        ),
    ];

    // the vendor: log in, upload with the form, see it submitted, log out
    browser.goto(&format!("{base}/")).await;
    assert_eq!(browser.text("h1").await, "Certified hardware");
    assert_eq!(browser.text("p.total").await.split(' ').next(), Some("0"));
    browser.login(&base, "vendor@acme.example", vendor_pw).await;
    secrets.push((
        "vendor session".into(),
        browser.cookie("certlab_session").await,
    ));
    secrets.push((
        "vendor CSRF token".into(),
        browser
            .attr("form[action='/logout'] input[name=csrf]", "value")
            .await,
    ));
    assert!(browser.text("main").await.contains("No submissions yet"));
    browser.click_nav("nav a[href='/upload']").await;
    assert_eq!(browser.text("h1").await, "Submit a bundle");
    browser
        .type_into("input[type=file][name=bundle]", bundle.to_str().unwrap())
        .await;
    browser
        .click_nav("form[action='/upload'] button[type=submit]")
        .await;
    let submission_url = browser.url().await;
    let id = submission_url
        .strip_prefix(&format!("{base}/submissions/"))
        .unwrap_or_else(|| panic!("the upload leads to its submission: {submission_url}"))
        .to_string();
    assert_eq!(browser.text("h1").await, format!("Submission {id}"));
    assert_eq!(browser.text("p.state strong").await, "submitted");
    let page = browser.text("main").await;
    assert!(
        page.contains("Acme Systems (submitted by vendor@acme.example)"),
        "{page}"
    );
    assert!(
        page.contains(record["host"]["kernel"].as_str().unwrap()),
        "the submission shows the kernel: {page}"
    );
    assert_eq!(
        browser.count("form[action$='/review']").await,
        0,
        "a vendor has no review form"
    );
    browser.logout(&base).await;

    // the reviewer: log in, open the submission from the list, start, approve
    browser
        .login(&base, "reviewer@lab.example", reviewer_pw)
        .await;
    secrets.push((
        "reviewer session".into(),
        browser.cookie("certlab_session").await,
    ));
    let row = browser.text("tbody tr").await;
    assert!(
        row.contains("Acme Systems") && row.contains("submitted"),
        "{row}"
    );
    browser
        .click_nav(&format!("a[href='/submissions/{id}']"))
        .await;
    assert_eq!(browser.url().await, submission_url);
    browser
        .type_into("textarea[name=comment]", "looks complete")
        .await;
    browser.click_nav("button[name=action][value=start]").await;
    assert_eq!(browser.text("p.state strong").await, "in_review");
    browser
        .type_into("textarea[name=comment]", "approved in the browser")
        .await;
    browser
        .click_nav("button[name=action][value=approve]")
        .await;
    assert_eq!(browser.text("p.state strong").await, "approved");
    let history = browser.text("ol.history").await;
    assert!(history.contains("approved in the browser"), "{history}");
    assert!(history.contains("looks complete"), "{history}");
    assert_eq!(
        browser.count("button[name=action][value=approve]").await,
        0,
        "no approving twice"
    );
    let cert_href = browser.attr("p.state a", "href").await;

    // the lab: the reviewer queues a job with the form, then watches a run's
    // events arrive live (lab.js and its EventSource, under the portal's CSP)
    browser.click_nav("nav a[href='/lab']").await;
    assert_eq!(browser.text("h1").await, "Lab");
    browser
        .type_into(
            "form[action='/lab/jobs'] input[name=require]",
            "pool=nowhere",
        )
        .await;
    browser
        .click_nav("form[action='/lab/jobs'] button[type=submit]")
        .await;
    assert_eq!(browser.url().await, format!("{base}/lab"));
    let job = browser.text("table.jobs tbody tr").await;
    assert!(
        job.contains("queued") && job.contains("server-basic") && job.contains("pool=nowhere"),
        "{job}"
    );
    let lab = certlab_harness::Store::open(&db).await.unwrap();
    let live_run = "00000000-0000-4000-8000-0000000b0b0e";
    lab.create_run(&certlab_harness::NewRun {
        id: live_run.into(),
        plan_id: "server-basic".into(),
        plan_version: "1".into(),
        plan_digest: "ab".repeat(32),
        target: "sim-0001".into(),
        hostname: "sim-0001".into(),
        kernel: "6.1.0".into(),
        started: time::OffsetDateTime::now_utc(),
        out_dir: None,
    })
    .await
    .unwrap();
    let append = |n: u64| {
        let lab = lab.clone();
        async move {
            let ev = certlab_harness::RunEvent::CaseStarted {
                index: n as usize,
                total: 3,
                id: format!("browser.case{n}"),
                title: format!("Case {n}"),
            };
            let payload = serde_json::to_value(&ev).unwrap();
            lab.append_event(
                live_run,
                n,
                time::OffsetDateTime::now_utc(),
                ev.kind(),
                &payload,
            )
            .await
            .unwrap();
        }
    };
    append(1).await;
    browser.goto(&format!("{base}/lab/runs/{live_run}")).await;
    assert_eq!(browser.count("#events tbody tr").await, 1);
    append(2).await;
    append(3).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while browser.count("#events tbody tr").await < 3 {
        assert!(Instant::now() < deadline, "the live events never showed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = browser.text("#events tbody").await;
    assert!(rows.contains("browser.case3 Case 3"), "{rows}");
    lab.mark_interrupted(live_run, time::OffsetDateTime::now_utc(), "test")
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while browser.text("#live").await != "The run is over." {
        assert!(Instant::now() < deadline, "the stream's end never showed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        browser.count("#events tbody tr").await,
        3,
        "each event once"
    );
    lab.close().await;
    browser.logout(&base).await;

    // anyone: search the public list by the CPU model, open the certification
    let cpu_model = record["profile"]["cpu_model"].as_str().unwrap();
    let word = cpu_model.split_whitespace().next().unwrap();
    browser.goto(&format!("{base}/")).await;
    browser.type_into("input[name=q]", word).await;
    browser
        .type_into("input[name=arch]", record["host"]["arch"].as_str().unwrap())
        .await;
    browser.click_nav("form.search button[type=submit]").await;
    let url = browser.url().await;
    assert!(url.starts_with(&format!("{base}/?")), "{url}");
    assert_eq!(browser.text("p.total").await.split(' ').next(), Some("1"));
    assert_eq!(browser.count("tbody tr a").await, 1);
    let row = browser.text("tbody tr").await;
    assert!(
        row.contains(record["host"]["kernel"].as_str().unwrap()),
        "{row}"
    );
    browser.click_nav("tbody tr a").await;
    assert_eq!(browser.url().await, format!("{base}{cert_href}"));
    let page = browser.text("main").await;
    for want in [
        cpu_model,
        record["host"]["kernel"].as_str().unwrap(),
        record["host"]["arch"].as_str().unwrap(),
        "Acme Systems",
        record["plan"]["id"].as_str().unwrap(),
    ] {
        assert!(
            page.contains(want),
            "the certification page shows {want:?}: {page}"
        );
    }
    // a search for something not certified finds nothing
    browser
        .goto(&format!("{base}/?q=no-such-hardware-xyz"))
        .await;
    let total = browser.text("p.total").await;
    assert!(total.starts_with("0 certifications"), "{total}");
    assert_eq!(browser.text("tbody tr td").await, "Nothing matches.");
    browser.quit().await;

    assert_eq!(server.stop(), Some(0), "serve exits 0 on SIGTERM");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("portal listening"),
        "the log was captured at debug level: {logged}"
    );
    for (what, secret) in &secrets {
        assert!(secret.len() >= 16, "{what} is a real secret: {secret:?}");
        assert!(
            !logged.contains(secret.as_str()),
            "the {what} is in serve's log:\n{logged}"
        );
    }
    // nothing written outside --data: its working directory, HOME, TMPDIR
    // and the lab data directory stay empty; under --data only the
    // content-addressed artifacts and the log key, and no upload left over
    for d in ["data", "home", "tmp", "cwd"] {
        let left: Vec<_> = std::fs::read_dir(elsewhere.join(d))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "serve wrote outside --data: {left:?}");
    }
    let mut top: Vec<String> = std::fs::read_dir(&portal_data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    // the artifacts, uploads in progress, and the transparency log's signing
    // key (web::transparency::LOG_KEY_DIR)
    assert_eq!(top, ["artifacts", "log-key", "uploads"]);
    assert_eq!(
        std::fs::read_dir(portal_data.join("uploads"))
            .unwrap()
            .count(),
        0
    );
    let artifacts: Vec<String> = std::fs::read_dir(portal_data.join("artifacts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let bundle_sha = certlab_reports::sha256_hex(&std::fs::read(&bundle).unwrap());
    assert!(artifacts.contains(&bundle_sha), "{artifacts:?}");
    for a in &artifacts {
        assert!(
            a.len() == 64 && a.bytes().all(|b| b.is_ascii_hexdigit()),
            "not a content address: {a}"
        );
    }
    pg.drop_db().await;
}

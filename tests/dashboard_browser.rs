//! End to end in a real browser: headless Chromium driven over WebDriver
//! (chromedriver, spoken to with plain HTTP): the dashboard shows the pools and
//! members of a live drover, a drain clicked in the page drains the member, and
//! a screenshot is written to `target/dashboard.png` (to `docs/dashboard.png`, the
//! README's copy, with `DROVER_UPDATE_SCREENSHOT=1`).
//!
//! Without `chromium` and `chromedriver` the test skips with one loud line,
//! except under CI (`CI` set), where `.ci/run` installs them and it fails.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{client, one_pool, Backend, Drover};
use serde_json::{json, Value};

const CHROMIUM: &str = "/usr/bin/chromium";

fn which(name: &str) -> Option<String> {
    let out = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !p.is_empty()).then_some(p)
}

/// chromedriver, killed on drop.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver session over HTTP.
struct Session {
    base: String,
    http: reqwest::Client,
}

impl Session {
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        v["value"].clone()
    }

    async fn script(&self, js: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": js, "args": []})),
        )
        .await
    }

    /// Clicks the first element matching `css`; `false` if it was not there (or went stale).
    async fn click(&self, css: &str) -> bool {
        let el = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        let Some(id) = el
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(Value::as_str)
        else {
            return false;
        };
        let r = self
            .cmd(
                reqwest::Method::POST,
                &format!("/element/{id}/click"),
                Some(json!({})),
            )
            .await;
        r.is_null()
    }

    /// Polls `js` (an expression) until it is `true`.
    async fn wait_for(&self, what: &str, js: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.script(&format!("return !!({js});")).await == json!(true) {
                return;
            }
            if Instant::now() > deadline {
                let body = self.script("return document.body.innerText;").await;
                panic!("timed out waiting for {what}; page text:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

fn b64decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64"),
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|c| *c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            n |= u32::from(val(*c)) << (18 - 6 * i);
        }
        let take = chunk.len() - 1;
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_shows_pools_and_drains_from_the_page() {
    let driver_bin = which("chromedriver");
    if driver_bin.is_none() || !std::path::Path::new(CHROMIUM).exists() {
        if std::env::var_os("CI").is_some() {
            panic!("CI is set but chromium / chromedriver are missing (.ci/run installs them)");
        }
        eprintln!("!!!!! SKIPPING dashboard_shows_pools_and_drains_from_the_page: chromium and chromium-driver are not installed (apt-get install chromium chromium-driver) !!!!!");
        return;
    }
    let (a, b, c) = (
        Backend::start("a"),
        Backend::start("b"),
        Backend::start("c"),
    );
    let d = Drover::start(
        &one_pool(
            &[a.addr, b.addr],
            "balance = \"least_conn\"\nslow_start = \"120s\"",
        )
        .replace("[admin]\n", "[admin]\ntoken = \"dash-token\"\n")
        // A rate-limited route before the catch-all one: the page shows its 429 count.
        .replace(
            "[[routes]]\n",
            "[[routes]]\nname = \"limited\"\npath_prefix = \"/limited\"\npool = \"app\"\n\
             rate_limit = { requests = 1, per = \"1h\", burst = 1 }\n[[routes]]\n",
        ),
    );
    // Three requests to the limited route: the first passes, the others get 429.
    for want in [200, 429, 429] {
        let r = client().get(d.url("/limited/x")).send().await.unwrap();
        assert_eq!(r.status(), want);
    }
    // Some traffic, so that the charts have something to draw.
    let traffic = {
        let url = d.url("/delay/15");
        tokio::spawn(async move {
            let c = client();
            loop {
                let _ = c.get(&url).send().await;
            }
        })
    };

    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let _driver = Driver(
        Command::new(driver_bin.unwrap())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver"),
    );
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let root = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(15);
    while http.get(format!("{root}/status")).send().await.is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let caps = json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": CHROMIUM, "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1280,1000", "--hide-scrollbars"
        ]}
    }}});
    let created: Value = http
        .post(format!("{root}/session"))
        .json(&caps)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sid = created["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {created}"))
        .to_string();
    let s = Session {
        base: format!("{root}/session/{sid}"),
        http,
    };

    s.cmd(
        reqwest::Method::POST,
        "/url",
        Some(json!({"url": d.admin_url("/?token=dash-token")})),
    )
    .await;
    let (aa, ba) = (a.addr.to_string(), b.addr.to_string());
    s.wait_for(
        "both members listed",
        &format!(
            "document.querySelector('.pool[data-pool=\"app\"] tr[data-address=\"{aa}\"]') && \
             document.querySelector('.pool[data-pool=\"app\"] tr[data-address=\"{ba}\"]')"
        ),
        Duration::from_secs(20),
    )
    .await;
    let text = s
        .script("return document.body.innerText;")
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("least_conn") && text.contains("healthy"),
        "{text}"
    );
    assert!(!text.contains("cannot reach"), "{text}");

    // A member added now is in its slow-start window: its weight cell says so.
    let r = client()
        .post(d.admin_url("/api/v1/pools/app/backends"))
        .bearer_auth("dash-token")
        .json(&json!({"address": c.addr.to_string()}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    s.wait_for(
        "the added member's effective weight",
        &format!(
            "(document.querySelector('tr[data-address=\"{}\"]') || {{}}).innerText?.includes('/ 1 (slow start)')",
            c.addr
        ),
        Duration::from_secs(20),
    )
    .await;

    // Wait for a few history points so that the charts show lines.
    s.wait_for(
        "chart lines (two history points, 5 s apart)",
        "[...document.querySelectorAll('.pool .chart svg path')].filter(p => p.getAttribute('d').includes('L')).length >= 3",
        Duration::from_secs(20),
    )
    .await;

    // Click "Drain" on a: the API shows it draining, and so does the page.
    let button = format!("button.drain[data-address=\"{aa}\"]");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.click(&button).await {
        assert!(Instant::now() < deadline, "could not click {button}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pool: Value = client()
            .get(d.admin_url("/api/v1/pools/app"))
            .bearer_auth("dash-token")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let state = pool["backends"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["address"] == aa.as_str())
            .unwrap()["state"]
            .clone();
        if state == "draining" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the click did not drain {aa}: {pool}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    s.wait_for(
        "the page showing draining and the event",
        &format!(
            "document.querySelector('tr[data-address=\"{aa}\"]').dataset.state === 'draining' && \
             document.querySelector('#events tr[data-kind=\"draining\"]')"
        ),
        Duration::from_secs(10),
    )
    .await;

    s.wait_for(
        "the Routes panel counting the limited route's 429s",
        "(() => { const r = document.querySelector('#routes tr[data-route=\"limited\"]'); \
         return r && Number(r.dataset.limited) === 2 && r.textContent.includes('1/1h, burst 1'); })()",
        Duration::from_secs(10),
    )
    .await;

    let png = s.cmd(reqwest::Method::GET, "/screenshot", None).await;
    let png = b64decode(png.as_str().expect("screenshot"));
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // Into target/ on every run; into docs/ (the README's copy) only when asked.
    let rel = if std::env::var("DROVER_UPDATE_SCREENSHOT").as_deref() == Ok("1") {
        "docs/dashboard.png"
    } else {
        "target/dashboard.png"
    };
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    std::fs::write(&out, &png).unwrap();
    s.cmd(reqwest::Method::DELETE, "", None).await;
    traffic.abort();
}

//! Helpers for the chaos tests: steady GET and POST load that records every
//! answer, the request log of `drover -v backend`, and a raw TCP member that
//! resets its connections mid-response.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::common::{client, Lines};

/// Longest a [`Traffic`] client runs, whatever the test does.
const TRAFFIC_LIMIT: Duration = Duration::from_secs(50);
/// Failures [`Figures::of`] prints one by one.
const MAX_PRINTED: usize = 20;
/// Most requests one [`Traffic`] client sends.
const MAX_REQUESTS_PER_CLIENT: usize = 20_000;

/// One request of the load and how it ended.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// When the answer (or the error) came, since the load started.
    pub at: Duration,
    pub post: bool,
    /// The `X-Request-Id` sent (drover keeps it, the backends log it).
    pub id: String,
    /// `None` when no response head arrived.
    pub status: Option<u16>,
    /// Empty when the whole response arrived.
    pub error: String,
    /// `X-Backend-Name` of the response.
    pub backend: String,
}

impl Outcome {
    /// A `200` with its whole body.
    pub fn ok(&self) -> bool {
        self.status == Some(200) && self.error.is_empty()
    }
}

/// Steady load through drover: GET and POST clients in closed loops, each
/// request with a unique `X-Request-Id` (`g<client>-<n>`, `p<client>-<n>`).
pub struct Traffic {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    log: Arc<Mutex<Vec<Outcome>>>,
    t0: Instant,
}

impl Traffic {
    /// Starts `gets` GET clients and `posts` POST clients (64-byte body) on
    /// `url`; each stops when told, after 50 s or after 20 000 requests.
    pub fn start(url: &str, gets: usize, posts: usize) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let t0 = Instant::now();
        let tasks = (0..gets + posts)
            .map(|c| {
                let post = c >= gets;
                let (url, stop, log) = (url.to_string(), stop.clone(), log.clone());
                tokio::spawn(async move {
                    let http = client();
                    for n in 0..MAX_REQUESTS_PER_CLIENT {
                        if stop.load(Ordering::Relaxed) || t0.elapsed() > TRAFFIC_LIMIT {
                            break;
                        }
                        let id = format!("{}{c}-{n}", if post { 'p' } else { 'g' });
                        let outcome = one_request(&http, &url, post, id, t0).await;
                        log.lock().unwrap().push(outcome);
                    }
                })
            })
            .collect();
        Traffic {
            stop,
            tasks,
            log,
            t0,
        }
    }

    /// Time since the load started (the clock of [`Outcome::at`]).
    pub fn now(&self) -> Duration {
        self.t0.elapsed()
    }

    /// Answers recorded so far.
    pub fn outcomes(&self) -> Vec<Outcome> {
        self.log.lock().unwrap().clone()
    }

    /// Stops the clients (each finishes its request) and returns every outcome.
    pub async fn stop(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
        let mut all = self.log.lock().unwrap().clone();
        all.sort_by_key(|o| o.at);
        all
    }
}

async fn one_request(
    http: &reqwest::Client,
    url: &str,
    post: bool,
    id: String,
    t0: Instant,
) -> Outcome {
    let req = if post {
        http.post(url).body(vec![b'x'; 64])
    } else {
        http.get(url)
    };
    let (mut status, mut error, mut backend) = (None, String::new(), String::new());
    match req.header("x-request-id", &id).send().await {
        Ok(resp) => {
            status = Some(resp.status().as_u16());
            backend = resp
                .headers()
                .get("x-backend-name")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            if let Err(e) = resp.bytes().await {
                error = format!("body: {e:?}");
            }
        }
        Err(e) => error = format!("{e:?}"),
    }
    Outcome {
        at: t0.elapsed(),
        post,
        id,
        status,
        error,
        backend,
    }
}

/// The figures of one run, printed for the report.
#[derive(Debug, Default)]
pub struct Figures {
    pub gets: usize,
    pub posts: usize,
    pub failed_gets: Vec<Outcome>,
    pub failed_posts: Vec<Outcome>,
}

impl Figures {
    /// Counts `outcomes` and prints them, with every failure, under `title`.
    pub fn of(title: &str, outcomes: &[Outcome]) -> Figures {
        let mut f = Figures::default();
        for o in outcomes {
            let (count, failed) = if o.post {
                (&mut f.posts, &mut f.failed_posts)
            } else {
                (&mut f.gets, &mut f.failed_gets)
            };
            *count += 1;
            if !o.ok() {
                failed.push(o.clone());
            }
        }
        println!(
            "[chaos] {title}: {} GET ({} failed), {} POST ({} failed)",
            f.gets,
            f.failed_gets.len(),
            f.posts,
            f.failed_posts.len()
        );
        let failed = f.failed_gets.len() + f.failed_posts.len();
        if failed > MAX_PRINTED {
            println!("[chaos]   (the first {MAX_PRINTED} of {failed} failures)");
        }
        for o in f
            .failed_gets
            .iter()
            .chain(&f.failed_posts)
            .take(MAX_PRINTED)
        {
            println!(
                "[chaos]   failed {} {} at {:.3}s: status {:?} backend {:?} {}",
                if o.post { "POST" } else { "GET" },
                o.id,
                o.at.as_secs_f64(),
                o.status,
                o.backend,
                o.error
            );
        }
        f
    }
}

/// Request ids of the POSTs a `drover -v backend` logged (`backend request` lines).
pub fn posts_logged(lines: &Lines) -> Vec<String> {
    lines
        .all()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "backend request" && v["method"] == "POST")
        .map(|v| v["request_id"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Asserts that no POST reached a backend twice, that every POST answered
/// `200` reached one exactly once, and that nothing unsent arrived.
/// `received` holds every POST id every backend saw. Returns how many arrived.
pub fn assert_no_post_replayed(outcomes: &[Outcome], received: &[String]) -> usize {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for id in received {
        *seen.entry(id.as_str()).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "POSTs replayed (id, times): {twice:?}");
    let posts: HashMap<&str, &Outcome> = outcomes
        .iter()
        .filter(|o| o.post)
        .map(|o| (o.id.as_str(), o))
        .collect();
    for id in seen.keys() {
        assert!(posts.contains_key(id), "backend saw POST {id} nobody sent");
    }
    for o in posts.values().filter(|o| o.ok()) {
        assert!(
            seen.contains_key(o.id.as_str()),
            "POST {} answered 200 but no backend saw it",
            o.id
        );
    }
    println!(
        "[chaos]   POSTs: {} sent, {} received by backends, 0 received twice",
        posts.len(),
        seen.len()
    );
    seen.len()
}

/// Where a [`Resetter`] cuts its answer.
#[derive(Clone, Copy, Debug)]
pub enum Cut {
    /// Part of the response head, then RST: nothing usable reached drover.
    InHead,
    /// The whole head (`Content-Length: 100`) and 50 body bytes, then RST.
    InBody,
}

/// A raw TCP member that answers `/health` properly (so active checks keep it
/// healthy) and every other request with part of a response, then a reset
/// (`SO_LINGER` 0). It records the request ids of the POSTs it read.
pub struct Resetter {
    pub addr: SocketAddr,
    pub posts: Arc<Mutex<Vec<String>>>,
    pub resets: Arc<std::sync::atomic::AtomicU64>,
    task: JoinHandle<()>,
}

impl Resetter {
    pub async fn start(cut: Cut) -> Resetter {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let posts = Arc::new(Mutex::new(Vec::new()));
        let resets = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let (p, r) = (posts.clone(), resets.clone());
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (p, r) = (p.clone(), r.clone());
                tokio::spawn(async move {
                    let _ = reset_connection(stream, cut, p, r).await;
                });
            }
        });
        Resetter {
            addr,
            posts,
            resets,
            task,
        }
    }
}

impl Drop for Resetter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves one connection of a [`Resetter`]: `/health` probes until one that
/// is not, which is answered in part and reset.
async fn reset_connection(
    mut s: TcpStream,
    cut: Cut,
    posts: Arc<Mutex<Vec<String>>>,
    resets: Arc<std::sync::atomic::AtomicU64>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let head = read_head(&mut s, &mut buf).await?;
        let mut lines = head.lines();
        let request_line = lines.next().unwrap_or("");
        let mut parts = request_line.split(' ');
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let header = |name: &str| {
            head.lines()
                .skip(1)
                .filter_map(|l| l.split_once(':'))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_string())
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < length {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).await?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..length.min(buf.len()));
        if path == "/health" {
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                .await?;
            continue;
        }
        if method == "POST" {
            posts
                .lock()
                .unwrap()
                .push(header("x-request-id").unwrap_or_default());
        }
        let partial: &[u8] = match cut {
            Cut::InHead => b"HTTP/1.1 200 OK\r\nContent-Type: text/pl",
            Cut::InBody => {
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nX-Backend-Name: resetter\r\n\r\n01234567890123456789012345678901234567890123456789"
            }
        };
        s.write_all(partial).await?;
        s.flush().await?;
        // Let the partial answer leave before the reset discards the send queue.
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.set_zero_linger()?;
        resets.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
}

/// Reads up to the end of a request head (at most 64 KiB), leaving what
/// follows it in `buf`; returns the head as text.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<String> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return Ok(head);
        }
        if buf.len() > 64 * 1024 {
            return Err(std::io::Error::other("request head too large"));
        }
        let mut chunk = [0u8; 4096];
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

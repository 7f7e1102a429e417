//! End to end: 1 GiB up and down through drover with bounded memory.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{one_pool, Backend, Drover};
use futures_util::StreamExt;

const GIB: u64 = 1 << 30;
/// Allowed RSS growth of drover while streaming 1 GiB each way.
const MAX_GROWTH_KIB: u64 = 16 * 1024;

fn rss_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Samples the peak RSS of `pid` until stopped.
fn sample_peak(pid: i32) -> (Arc<AtomicBool>, Arc<AtomicU64>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let (s, p) = (stop.clone(), peak.clone());
    let h = std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            p.fetch_max(rss_kib(pid), Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(20));
        }
    });
    (stop, peak, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_upload_and_download_stream_with_bounded_rss() {
    let b = Backend::start("big");
    let d = Drover::start(&one_pool(&[b.addr], "request_timeout = \"300s\""));
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    // Warm up so connection pools and buffers exist before the baseline.
    for _ in 0..20 {
        c.get(d.url("/bytes/100000"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
    }
    let base = rss_kib(d.proc.pid());
    let (stop, peak, h) = sample_peak(d.proc.pid());

    // Download.
    let r = c.get(d.url(&format!("/bytes/{GIB}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let mut got = 0u64;
    let mut s = r.bytes_stream();
    while let Some(chunk) = s.next().await {
        got += chunk.unwrap().len() as u64;
    }
    assert_eq!(got, GIB);

    // Upload, streamed from a generator (never in memory whole).
    let chunk = bytes::Bytes::from(vec![7u8; 256 * 1024]);
    let n = GIB / chunk.len() as u64;
    let body =
        futures_util::stream::iter((0..n).map(move |_| Ok::<_, std::io::Error>(chunk.clone())));
    let r = c
        .post(d.url("/upload"))
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["body_bytes"], GIB);

    stop.store(true, Ordering::Relaxed);
    h.join().unwrap();
    let growth = peak.load(Ordering::Relaxed).saturating_sub(base);
    eprintln!(
        "drover RSS: baseline {base} KiB, peak growth {growth} KiB over 1 GiB down + 1 GiB up"
    );
    assert!(growth < MAX_GROWTH_KIB, "RSS grew by {growth} KiB");
}

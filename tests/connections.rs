//! Client connections: the connection limit under a low open-file limit,
//! silent connections, idle upgrade tunnels, and a port another process
//! already listens on.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{client, one_pool, Backend, Drover, Proc};

fn with_server_keys(cfg: &str, keys: &str) -> String {
    cfg.replace(
        "listen = [\"127.0.0.1:0\"]",
        &format!("listen = [\"127.0.0.1:0\"]\n{keys}"),
    )
}

/// Reads until EOF (or a reset); returns how long that took, or `None` if the
/// connection was still open after `limit`.
fn time_to_close(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Some(t0.elapsed()),
            Err(_) => return None,
        }
    }
}

// ---- finding 4: silent connections and idle tunnels ----

#[test]
fn a_silent_connection_is_closed_after_header_read_timeout() {
    let b = Backend::start("b");
    let cfg = with_server_keys(
        &one_pool(&[b.addr], ""),
        "header_read_timeout = \"1s\"\nidle_timeout = \"60s\"",
    );
    let d = Drover::start(&cfg);
    let mut silent = TcpStream::connect(d.proxy).unwrap();
    let took = time_to_close(&mut silent, Duration::from_secs(10));
    let took = took.expect("a connection that sends nothing is kept past header_read_timeout");
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "closed after {took:?}"
    );

    // A client that sends its request in time is served, and then kept alive
    // while idle up to idle_timeout, not header_read_timeout.
    let mut s = TcpStream::connect(d.proxy).unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert_eq!(time_to_close(&mut s, Duration::from_secs(3)), None);
    // The next head, once begun, must be complete within header_read_timeout.
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let took = time_to_close(&mut s, Duration::from_secs(10)).expect("slow head kept");
    assert!(took < Duration::from_secs(5), "closed after {took:?}");
}

/// Sends the `/upgrade/echo` handshake and reads the 101 head.
fn raw_tunnel(proxy: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(proxy).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        b"GET /upgrade/echo HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed during the handshake");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

#[test]
fn an_idle_tunnel_is_closed_after_tunnel_idle_timeout_and_an_active_one_is_kept() {
    let b = Backend::start("b");
    let cfg = with_server_keys(&one_pool(&[b.addr], ""), "tunnel_idle_timeout = \"1s\"");
    let d = Drover::start(&cfg);
    let mut idle = raw_tunnel(d.proxy);
    let mut active = raw_tunnel(d.proxy);

    // The active tunnel moves a few bytes every 300 ms for 3 s: three idle timeouts.
    let t0 = Instant::now();
    let mut echoed = 0;
    while t0.elapsed() < Duration::from_secs(3) {
        active.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        active.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");
        echoed += 1;
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(echoed >= 5);

    // The idle one was closed meanwhile (about 1 s after it opened).
    let took = time_to_close(&mut idle, Duration::from_secs(5));
    assert!(took.is_some(), "idle tunnel still open after 8 s");
    active.write_all(b"pong").unwrap();
    let mut got = [0u8; 4];
    active.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_tunnels_hold_their_slot_under_max_connections() {
    let b = Backend::start("b");
    let cfg = with_server_keys(&one_pool(&[b.addr], ""), "max_connections = 2");
    let d = Drover::start(&cfg);
    let url = d.url("/x");
    let first = raw_tunnel(d.proxy);
    let second = raw_tunnel(d.proxy);
    // Both slots are taken by tunnels: a new client waits in the backlog.
    assert_eq!(get_status(&url).await, None);
    drop(first);
    served_again(&url).await;
    drop(second);
}

#[tokio::test]
async fn an_idle_websocket_is_closed_after_tunnel_idle_timeout() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let b = Backend::start("b");
    let cfg = with_server_keys(&one_pool(&[b.addr], ""), "tunnel_idle_timeout = \"1s\"");
    let d = Drover::start(&cfg);
    let (mut ws, resp) = tokio_tungstenite::connect_async(format!("ws://{}/ws", d.proxy))
        .await
        .unwrap();
    assert_eq!(resp.status(), 101);
    ws.send(Message::text("hello")).await.unwrap();
    let echo = ws.next().await.unwrap().unwrap();
    assert_eq!(echo.into_text().unwrap().as_str(), "hello");
    let t0 = Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "idle WebSocket still open after 10 s");
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(800), "closed after {took:?}");
}

// ---- finding 3: file descriptors ----

/// Starts drover under `prlimit --nofile=N:N`.
fn drover_with_nofile(nofile: u32, cfg: &str) -> Drover {
    let limit = format!("--nofile={nofile}:{nofile}");
    Drover::start_under(&["prlimit", &limit], cfg, &[], &[])
}

fn warnings(p: &Proc) -> Vec<String> {
    p.stderr
        .all()
        .into_iter()
        .filter(|l| l.contains("\"level\":\"WARN\""))
        .collect()
}

fn flood(proxy: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect_timeout(&proxy, Duration::from_secs(5)).unwrap())
        .collect()
}

async fn get_status(url: &str) -> Option<u16> {
    let r = tokio::time::timeout(Duration::from_secs(5), client().get(url).send()).await;
    match r {
        Ok(Ok(resp)) => Some(resp.status().as_u16()),
        _ => None,
    }
}

/// Waits (up to 20 s) until `url` answers 200 again.
async fn served_again(url: &str) {
    let t0 = Instant::now();
    while get_status(url).await != Some(200) {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "proxy still unusable"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_under_a_low_fd_limit_leaves_admin_and_proxy_usable() {
    let b = Backend::start("b");
    // Silent connections are kept long enough for the whole test.
    let cfg = with_server_keys(
        &one_pool(&[b.addr], ""),
        "header_read_timeout = \"60s\"\nthreads = 2",
    );
    let d = drover_with_nofile(256, &cfg);
    let (p, proxy, admin) = (&d.proc, d.proxy, d.admin);
    let limit_line = p
        .stderr
        .wait_for("limit line", Duration::from_secs(10), |l| {
            l.contains("client connection limit")
        });
    // The default for 256 descriptors: (256 - 128) / 2.
    assert!(
        limit_line.contains("\"max_connections\":64"),
        "{limit_line}"
    );
    let url = format!("http://{proxy}/x");

    // Below the limit, a new client is served at once during a flood.
    let mut silent = flood(proxy, 40);
    assert_eq!(get_status(&url).await, Some(200));

    // 300 silent connections: past max_connections, the rest wait in the backlog.
    silent.extend(flood(proxy, 260));
    tokio::time::sleep(Duration::from_secs(2)).await;
    for _ in 0..5 {
        assert_eq!(
            get_status(&format!("http://{admin}/api/v1/pools")).await,
            Some(200),
            "admin API unreachable during the flood"
        );
    }
    let w = warnings(p);
    assert!(w.len() <= 2, "{} warnings:\n{}", w.len(), w.join("\n"));
    assert!(
        w.iter().all(|l| !l.contains("Too many open files")),
        "{}",
        w.join("\n")
    );

    // Once the flood is gone, new clients are served again.
    drop(silent);
    served_again(&url).await;
    for _ in 0..10 {
        assert_eq!(get_status(&url).await, Some(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_descriptors_backs_off_with_one_warning() {
    let b = Backend::start("b");
    // A limit set above what 256 descriptors allow: accept() fails with EMFILE.
    let cfg = with_server_keys(
        &one_pool(&[b.addr], ""),
        "header_read_timeout = \"60s\"\nmax_connections = 5000\nthreads = 2",
    );
    let d = drover_with_nofile(256, &cfg);
    let (p, proxy) = (&d.proc, d.proxy);
    let url = format!("http://{proxy}/x");
    let silent = flood(proxy, 300);
    p.stderr
        .wait_for("EMFILE warning", Duration::from_secs(20), |l| {
            l.contains("out of file descriptors")
        });
    // Two more seconds of EMFILE: still one warning, not 20 a second.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let w = warnings(p);
    let accept: Vec<&String> = w.iter().filter(|l| l.contains("accept failed")).collect();
    assert_eq!(accept.len(), 1, "{}", w.join("\n"));

    drop(silent);
    served_again(&url).await;
}

// ---- finding 6: a port in use ----

fn drover_exit(cfg: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b.toml");
    std::fs::write(&path, cfg).unwrap();
    let mut p = Proc::spawn(
        &["--log-format", "json", "run", "-c", path.to_str().unwrap()],
        None,
    );
    let code = p.wait_exit(Duration::from_secs(20));
    // Give the reader thread a moment to collect the last lines.
    std::thread::sleep(Duration::from_millis(200));
    (code, p.stderr.all().join("\n"))
}

#[test]
fn a_second_drover_on_the_same_port_exits_1_naming_the_address() {
    let b = Backend::start("b");
    let a = Drover::start(&one_pool(&[b.addr], ""));
    let cfg = one_pool(&[b.addr], "").replace(
        "listen = [\"127.0.0.1:0\"]",
        &format!("listen = [\"{}\"]", a.proxy),
    );
    let (code, err) = drover_exit(&cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on {}", a.proxy)),
        "{err}"
    );
    // The wildcard address overlaps 127.0.0.1 too.
    let wildcard = cfg.replace(
        &format!("listen = [\"{}\"]", a.proxy),
        &format!("listen = [\"0.0.0.0:{}\"]", a.proxy.port()),
    );
    let (code, err) = drover_exit(&wildcard);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot listen on 0.0.0.0:"), "{err}");

    // Its admin address as well.
    let admin = one_pool(&[b.addr], "").replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"{}\"", a.admin),
    );
    let (code, err) = drover_exit(&admin);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot listen on {}", a.admin)),
        "{err}"
    );

    // The first drover is untouched.
    assert!(
        common::curl(&["-s", "-o", "/dev/null", "-w", "%{http_code}", &a.url("/")]).contains("200")
    );
}

#[test]
fn a_port_held_by_another_reuseport_server_is_refused() {
    // Any server of the same user that sets SO_REUSEPORT, not only drover.
    let other = drover::proxy::listen::bind_reuseport("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = other.local_addr().unwrap();
    let cfg = format!(
        "[server]\nlisten = [\"{addr}\"]\n[admin]\nlisten = \"127.0.0.1:0\"\n[pools.a]\nbackends = [\"127.0.0.1:1\"]\n"
    );
    let (code, err) = drover_exit(&cfg);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

// ---- connections spread over the workers ----

/// `drover_worker_connections` per worker, from `/metrics`.
async fn worker_connections(d: &Drover) -> Vec<usize> {
    let text = common::get_text(&d.admin_url("/metrics")).await;
    text.lines()
        .filter(|l| l.starts_with("drover_worker_connections{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect()
}

/// The kernel hashes each connection to one worker's `SO_REUSEPORT` socket,
/// so a few long-lived ones may all land on one worker; the accepting worker
/// hands a connection to the least loaded one when it carries one more.
/// Thirty connections opened one after another on three workers end up
/// within 1 of each other (by chance alone, about one time in 37), every
/// one of them is served, and closing them brings every count back to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_spread_over_the_workers() {
    let b = Backend::start("b");
    let d = Drover::start(&with_server_keys(&one_pool(&[b.addr], ""), "threads = 3"));
    let mut held = Vec::new();
    for i in 0..30 {
        held.push(TcpStream::connect(d.proxy).unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let counts = worker_connections(&d).await;
            if counts.iter().sum::<usize>() == i + 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "connection {i} not counted: {counts:?}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let counts = worker_connections(&d).await;
    assert_eq!(counts.len(), 3, "one gauge per worker: {counts:?}");
    let (max, min) = (counts.iter().max().unwrap(), counts.iter().min().unwrap());
    assert!(max - min <= 1, "connections not spread: {counts:?}");

    // Whichever worker took it, each connection is served.
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        let head = String::from_utf8_lossy(&buf[..n]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    drop(held);
    common::wait_until("every worker's count back to 0", 10, async || {
        worker_connections(&d).await.iter().all(|&n| n == 0)
    })
    .await;
    let metrics = common::get_text(&d.admin_url("/metrics")).await;
    assert!(metrics.contains("# TYPE drover_worker_moves_total counter"));
}

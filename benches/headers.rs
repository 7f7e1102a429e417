//! Header rewrite cost per request: hop-by-hop removal and forwarding headers
//! on a typical browser request, and response cleaning on a typical response.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use drover::proxy::headers::{add_forwarded, clean_response, strip_hop_by_hop, ForwardInfo};
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::Version;

fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
    pairs
        .iter()
        .map(|&(k, v)| (HeaderName::from_static(k), HeaderValue::from_static(v)))
        .collect()
}

fn rewrite(c: &mut Criterion) {
    let request = map(&[
        ("host", "example.com"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/128.0",
        ),
        ("accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
        ("accept-language", "en-US,en;q=0.5"),
        ("accept-encoding", "gzip, deflate, br"),
        ("connection", "keep-alive"),
        ("cookie", "session=abc123; theme=dark"),
    ]);
    let id = HeaderValue::from_static("0123456789abcdef01234567");
    let host = HeaderValue::from_static("example.com");
    c.bench_function("request_rewrite/browser", |b| {
        b.iter_batched(
            || request.clone(),
            |mut h| {
                strip_hop_by_hop(&mut h, false);
                add_forwarded(
                    &mut h,
                    &ForwardInfo {
                        client_ip: "127.0.0.1".parse().unwrap(),
                        proto: "http",
                        host: Some(&host),
                        version: Version::HTTP_11,
                        request_id: &id,
                    },
                );
                black_box(h)
            },
            BatchSize::SmallInput,
        )
    });
    let response = map(&[
        ("server", "nginx"),
        ("date", "Sat, 28 Nov 2026 12:00:00 GMT"),
        ("content-type", "text/plain"),
        ("content-length", "100"),
        ("connection", "keep-alive"),
    ]);
    c.bench_function("response_clean/small", |b| {
        b.iter_batched(
            || response.clone(),
            |mut h| {
                clean_response(&mut h, false);
                black_box(h)
            },
            BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, rewrite);
criterion_main!(benches);

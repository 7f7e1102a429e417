//! Proptest twins of the fuzz targets in `fuzz/`: the same entry points
//! (`drover::fuzz_api`), fed by proptest, so plain `cargo test` covers them too.
//! Each entry point panics on a broken invariant (listed in its doc comment).

use drover::fuzz_api::{self, Head};
use proptest::prelude::*;

/// Host header values as they arrive: names, ports, IPv6 literals, broken brackets.
fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9.*-]{0,20}(:[0-9]{0,6})?",
        "\\[[0-9a-fA-F:]{0,12}\\]?(:[0-9]{0,5})?",
        "[\\[\\]:a-z0-9]{0,8}",
        "(api|cdn|x\\.y)\\.example\\.com(:[0-9]{1,5})?",
    ]
}

/// Request targets: paths near the configured prefixes, with queries and escapes.
fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        "(/(api|static|a|v6|x|%2F|\\.\\.|)){0,4}/?(\\?[a-z=&%+0-9]{0,12})?",
        "/[ -~]{0,30}",
        "http://(api|cdn)\\.example\\.com(:80)?/(api|static)/[a-z]{0,5}",
        Just("*".to_string()),
    ]
}

/// Header lines, biased to the ones the rewrite treats specially.
fn header_line() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("Connection"),
        Just("Keep-Alive"),
        Just("Proxy-Connection"),
        Just("TE"),
        Just("Transfer-Encoding"),
        Just("Upgrade"),
        Just("Expect"),
        Just("X-Forwarded-For"),
        Just("Via"),
        Just("X-Request-Id"),
        Just("Host"),
        Just("X-Secret"),
        Just("traceparent"),
        Just("tracestate"),
        Just("Referer"),
        Just("User-Agent"),
    ];
    let value = prop_oneof![
        traceparent_text(),
        "(keep-alive|close|upgrade|x-secret|te|host|via|trailers|gzip|x-request-id|x-forwarded-for)(, ?(keep-alive|upgrade|x-secret|te|host|trailers)){0,3}",
        "[ -~]{0,20}",
    ];
    (name, value).prop_map(|(n, v)| format!("{n}: {v}"))
}

/// `traceparent` values: valid ones, near misses (case, zeros, lengths,
/// versions, trailing fields) and noise.
fn traceparent_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "(00|01|fe|ff|0g) ?-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[a-z0-9-]{0,6})?",
        "00-[0-9a-fA-F]{30,33}-[0-9a-fA-F]{15,17}-[0-9a-fA-F]{1,3}",
        "00-0{32}-[0-9a-f]{16}-01",
        "00-[0-9a-f]{32}-0{16}-00",
        "[0-9a-f-]{0,60}",
    ]
}

fn head_bytes() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just("GET"), Just("POST"), Just("HEAD"), Just("PURGE")],
        target(),
        prop_oneof![Just("HTTP/1.1"), Just("HTTP/1.0"), Just("HTTP/2")],
        proptest::option::of(host()),
        prop::collection::vec(header_line(), 0..6),
    )
        .prop_map(|(m, t, v, h, lines)| {
            let mut s = format!("{m} {t} {v}\r\n");
            if let Some(h) = h {
                s.push_str(&format!("Host: {h}\r\n"));
            }
            for l in lines {
                s.push_str(&l);
                s.push_str("\r\n");
            }
            s.into_bytes()
        })
}

fn parsed(bytes: &[u8]) -> Option<Head> {
    fuzz_api::parse_head(bytes)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn traceparent_twin_structured(v in traceparent_text()) {
        fuzz_api::traceparent(v.as_bytes());
    }

    #[test]
    fn traceparent_twin_bytes(v in prop::collection::vec(any::<u8>(), 0..80)) {
        fuzz_api::traceparent(&v);
    }

    #[test]
    fn request_head_twin_structured(bytes in head_bytes()) {
        if let Some(h) = parsed(&bytes) {
            fuzz_api::request_head(&h);
        }
    }

    #[test]
    fn request_head_twin_raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        if let Some(h) = parsed(&bytes) {
            fuzz_api::request_head(&h);
        }
    }

    #[test]
    fn h1_codec_twin_structured(bytes in h1_bytes()) {
        fuzz_api::h1_head(&bytes);
        fuzz_api::h1_connection(&bytes);
    }

    #[test]
    fn h1_codec_twin_raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        fuzz_api::h1_head(&bytes);
        fuzz_api::h1_connection(&bytes);
    }

    #[test]
    fn upstream_response_twin_structured(bytes in response_bytes()) {
        fuzz_api::upstream_response(&bytes);
    }

    #[test]
    fn upstream_h2_twin_structured(bytes in h2_backend_bytes()) {
        fuzz_api::upstream_h2(&bytes);
    }

    #[test]
    fn upstream_h2_twin_raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        fuzz_api::upstream_h2(&bytes);
    }

    #[test]
    fn h2_server_twin_structured(bytes in h2_client_bytes()) {
        fuzz_api::h2_server(&bytes);
    }

    #[test]
    fn h2_server_twin_raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        fuzz_api::h2_server(&bytes);
    }

    #[test]
    fn upstream_response_twin_raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        fuzz_api::upstream_response(&bytes);
    }

    #[test]
    fn strip_prefix_twin(prefix in "/[a-z/]{0,6}", path in "/[a-z/]{0,10}(\\?[a-z=]{0,4})?") {
        fuzz_api::route_with_prefix(&prefix, &path);
    }

    #[test]
    fn route_rules_twin_structured(
        host in prop_oneof![host(), r"[a-z.:@/?#\\\[\]_%-]{0,16}", "\\PC{0,12}"],
        target in target(),
        template in "([a-z ;=]{0,4}(\\$\\{(client_ip|request_id|host|HOME|)\\}?)?){0,4}",
    ) {
        fuzz_api::expansions(&host, &target, &template);
    }

    #[test]
    fn route_rules_twin_raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..80)) {
        fuzz_api::route_rules(&bytes);
    }

    #[test]
    fn config_twin_raw_text(src in "[ -~\n]{0,200}") {
        fuzz_api::config(&src);
    }

    #[test]
    fn config_twin_structured(
        listen in "[0-9.:\\[\\]a-z]{0,16}",
        timeout in "[0-9.]{0,4}(ms|s|m|h|x|)",
        host in host(),
        prefix in "[/a-z]{0,6}",
        backend in "[0-9.:\\[\\]]{0,16}",
        extra in "[a-z_]{0,8}",
    ) {
        let src = format!(
            "[server]\nlisten = [{listen:?}]\nrequest_timeout = {timeout:?}\n\
             [[routes]]\nhost = {host:?}\npath_prefix = {prefix:?}\npool = \"a\"\n\
             [pools.a]\nbackends = [{backend:?}]\n{extra} = 1\n"
        );
        fuzz_api::config(&src);
    }

    #[test]
    fn duration_twin(s in "[0-9.]{0,6}(ns|us|µs|ms|s|m|h|d|k|g|t|b|ib|x|)([0-9.]{0,3}(ms|s|m|h|))?") {
        fuzz_api::duration(&s);
    }

    #[test]
    fn duration_twin_any_text(s in "\\PC{0,12}") {
        fuzz_api::duration(&s);
    }

    /// `grpc-timeout` values near the grammar, and health responses: frames
    /// with plausible and broken protobuf inside, and raw bytes.
    #[test]
    fn grpc_twin_timeouts(s in "[0-9]{0,10}[HMSmunx ]?") {
        fuzz_api::grpc(s.as_bytes());
    }

    #[test]
    fn grpc_twin_health_responses(
        flag in prop_oneof![Just(0u8), any::<u8>()],
        msg in prop::collection::vec(
            prop_oneof![Just(0x08u8), Just(1), Just(2), Just(0x0a), Just(0x80), Just(0xff), any::<u8>()],
            0..24,
        ),
        skew in -2i64..3,
    ) {
        let len = (msg.len() as i64 + skew).max(0) as u32;
        let mut body = vec![flag];
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(&msg);
        fuzz_api::grpc(&body);
    }

    #[test]
    fn grpc_twin_any_bytes(b in prop::collection::vec(any::<u8>(), 0..40)) {
        fuzz_api::grpc(&b);
    }

    #[test]
    fn sticky_cookie_twin(
        pairs in prop::collection::vec(
            prop_oneof![
                "drover_sticky ?= ?\"?[0-9a-fA-F]{14,18}\"?",
                "[a-z_]{0,14}=[ -~]{0,20}",
                "[;= \t]{0,4}",
            ],
            0..6,
        ),
        lines in 1usize..3,
    ) {
        let joined = pairs.join("; ");
        let input = (0..lines).map(|_| joined.as_str()).collect::<Vec<_>>().join("\n");
        fuzz_api::sticky_cookie(input.as_bytes());
    }

    #[test]
    fn sticky_cookie_twin_any_bytes(raw in prop::collection::vec(any::<u8>(), 0..80)) {
        fuzz_api::sticky_cookie(&raw);
    }

    #[test]
    fn admin_request_twin(
        method in prop_oneof![Just("GET"), Just("HEAD"), Just("POST"), Just("PUT"), Just("DELETE"), Just("PATCH")],
        segs in prop::collection::vec(
            prop_oneof![
                Just("api".to_string()), Just("v1".to_string()), Just("pools".to_string()),
                Just("backends".to_string()), Just("drain".to_string()), Just("events".to_string()),
                "%[0-9A-Fa-f+ g-]{0,2}[a-z]{0,2}", "[a-z0-9.:]{0,6}", Just(String::new()),
            ],
            0..7,
        ),
        query in proptest::option::of("(token|since|limit|x)=[0-9a-z%+-]{0,6}(&(token|since|limit)=[0-9%+]{0,4}){0,2}"),
    ) {
        let mut target = format!("/{}", segs.join("/"));
        if let Some(q) = query {
            target.push('?');
            target.push_str(&q);
        }
        if let Some(h) = parsed(format!("{method} {target} HTTP/1.1\r\n").as_bytes()) {
            fuzz_api::admin_request(&h);
        }
    }
}

/// What a client sends on one connection: a few requests (pipelined), each
/// with framing fields near the native codec's edges, a body or a cut one.
fn h1_bytes() -> impl Strategy<Value = Vec<u8>> {
    let request = (
        prop_oneof![
            Just("GET".to_string()),
            Just("POST".to_string()),
            Just("HEAD".to_string()),
            Just("G\x01T".to_string()),
            "[A-Z]{1,7}"
        ],
        prop_oneof![
            Just("/".to_string()),
            Just("*".to_string()),
            Just("http://a/".to_string()),
            "/[ -~]{0,12}"
        ],
        prop_oneof![
            Just("HTTP/1.1".to_string()),
            Just("HTTP/1.0".to_string()),
            Just("HTTP/2.0".to_string()),
            Just("".to_string())
        ],
        prop::collection::vec(
            prop_oneof![
                header_line(),
                "Content-Length: ([0-9]{1,3}|\\+5|-1|1, 1|99999999999999999999)",
                Just("Connection: close".to_string()),
                "X-[a-z]{1,4}:[ -~]{0,10}",
            ],
            0..5,
        ),
        "[a-z]{0,12}",
        prop_oneof![Just("\r\n"), Just("\n")],
    )
        .prop_map(|(m, t, v, hs, body, eol)| {
            let mut r = format!("{m} {t} {v}{eol}");
            for h in hs {
                r.push_str(&h);
                r.push_str(eol);
            }
            r.push_str(eol);
            r.push_str(&body);
            r
        });
    prop::collection::vec(request, 1..4).prop_map(|rs| rs.concat().into_bytes())
}

/// A selector byte, then backend responses: a status line (interim or
/// final, some malformed), framing fields, and a body chunked or not.
/// One HTTP/2 frame: 9-byte header (length, type, flags, stream id), payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// What an h2 backend sends back to stream 1 (after a selector byte for
/// the request): its SETTINGS, then frames of every kind with plausible
/// and odd values (HPACK blocks from the static table and literals).
fn h2_backend_bytes() -> impl Strategy<Value = Vec<u8>> {
    let block = prop_oneof![
        Just(vec![0x88]),                         // :status 200
        Just(vec![0x89]),                         // :status 204
        Just(vec![0x8b]),                         // :status 304
        Just(vec![0x88, 0x5c, 0x01, b'5']),       // 200, content-length: 5
        Just(vec![0x88, 0x5c, 0x02, b'-', b'1']), // content-length: -1
        Just(vec![
            0x40, 0x0b, b'g', b'r', b'p', b'c', b'-', b's', b't', b'a', b't', b'u', b's', 0x01,
            b'0'
        ]),
        Just(vec![0x08, 0x03, b'1', b'0', b'3']), // :status 103 (literal)
        prop::collection::vec(any::<u8>(), 0..12),
    ];
    let frame = prop_oneof![
        (block, 0u8..16).prop_map(|(b, f)| h2_frame(1, f | 4, 1, &b)),
        ("[a-z]{0,12}", any::<bool>()).prop_map(|(d, end)| h2_frame(
            0,
            u8::from(end),
            1,
            d.as_bytes()
        )),
        (0u32..14).prop_map(|r| h2_frame(3, 0, 1, &r.to_be_bytes())),
        (0u32..3, 0u32..14).prop_map(|(last, r)| {
            let mut p = last.to_be_bytes().to_vec();
            p.extend_from_slice(&r.to_be_bytes());
            h2_frame(7, 0, 0, &p)
        }),
        (0u32..2, 0u32..70_000).prop_map(|(s, n)| h2_frame(8, 0, s, &n.to_be_bytes())),
        (1u16..7, any::<u32>()).prop_map(|(id, v)| {
            let mut p = id.to_be_bytes().to_vec();
            p.extend_from_slice(&v.to_be_bytes());
            h2_frame(4, 0, 0, &p)
        }),
        Just(h2_frame(4, 1, 0, &[])),
        Just(h2_frame(6, 0, 0, &[0; 8])),
    ];
    (
        any::<u8>(),
        prop::collection::vec(frame, 0..6),
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(|(selector, frames, tail)| {
            let mut out = vec![selector % 8];
            out.extend(h2_frame(4, 0, 0, &[]));
            for f in frames {
                out.extend(f);
            }
            out.extend(tail);
            out
        })
}

/// What a client sends on one HTTP/2 connection (after a selector byte:
/// preface or not, where the bytes are split): requests on streams 1 to 7
/// (HPACK blocks from the static table and literals, good and broken), their
/// bodies, trailers, CONTINUATION, and every other kind of frame with
/// plausible and odd values.
fn h2_client_bytes() -> impl Strategy<Value = Vec<u8>> {
    let block = prop_oneof![
        Just(vec![0x82, 0x86, 0x84, 0x41, 0x01, b'a']), // GET http / a
        Just(vec![0x83, 0x86, 0x84]),                   // POST http /
        Just(vec![0x83, 0x86, 0x84, 0x5c, 0x01, b'3']), // content-length: 3
        Just(vec![0x82, 0x86, 0x44, 0x03, b'/', b'a', b'b']),
        Just(vec![0x82, 0x84]), // no :scheme
        Just(vec![
            0x40, 0x0b, b'g', b'r', b'p', b'c', b'-', b's', b't', b'a', b't', b'u', b's', 0x01,
            b'0'
        ]),
        Just(vec![0x40, 0x02, b't', b'e', 0x04, b'g', b'z', b'i', b'p']),
        prop::collection::vec(any::<u8>(), 0..12),
    ];
    let stream = prop_oneof![Just(1u32), Just(3), Just(5), Just(7), 0u32..9];
    let frame = prop_oneof![
        (block.clone(), 0u8..64, stream.clone()).prop_map(|(b, f, s)| h2_frame(1, f | 4, s, &b)),
        (block.clone(), stream.clone()).prop_map(|(b, s)| h2_frame(1, 0, s, &b)),
        (block, any::<bool>(), stream.clone()).prop_map(|(b, e, s)| h2_frame(
            9,
            u8::from(e) * 4,
            s,
            &b
        )),
        ("[a-z]{0,12}", 0u8..16, stream.clone()).prop_map(|(d, f, s)| h2_frame(
            0,
            f,
            s,
            d.as_bytes()
        )),
        (0u32..14, stream.clone()).prop_map(|(r, s)| h2_frame(3, 0, s, &r.to_be_bytes())),
        (0u32..3, 0u32..14).prop_map(|(last, r)| {
            let mut p = last.to_be_bytes().to_vec();
            p.extend_from_slice(&r.to_be_bytes());
            h2_frame(7, 0, 0, &p)
        }),
        (stream.clone(), 0u32..70_000).prop_map(|(s, n)| h2_frame(8, 0, s % 4, &n.to_be_bytes())),
        (1u16..9, any::<u32>()).prop_map(|(id, v)| {
            let mut p = id.to_be_bytes().to_vec();
            p.extend_from_slice(&v.to_be_bytes());
            h2_frame(4, 0, 0, &p)
        }),
        Just(h2_frame(4, 1, 0, &[])),
        Just(h2_frame(6, 0, 0, &[0; 8])),
        stream.prop_map(|s| h2_frame(2, 0, s, &[0, 0, 0, 1, 16])),
        Just(h2_frame(0xfa, 0, 0, b"x")),
    ];
    (
        any::<u8>(),
        prop::collection::vec(frame, 0..8),
        prop::collection::vec(any::<u8>(), 0..4),
    )
        .prop_map(|(selector, frames, tail)| {
            let mut out = vec![selector & !1];
            for f in frames {
                out.extend(f);
            }
            out.extend(tail);
            out
        })
}

fn response_bytes() -> impl Strategy<Value = Vec<u8>> {
    let response = (
        prop_oneof![
            Just("HTTP/1.1 200 OK"),
            Just("HTTP/1.1 103 Early Hints"),
            Just("HTTP/1.0 200 OK"),
            Just("HTTP/1.1 204 No Content"),
            Just("HTTP/1.1 304 Not Modified"),
            Just("HTTP/1.1 101 Switching Protocols"),
            Just("HTTP/1.1 2000 OK"),
        ],
        prop::collection::vec(
            prop_oneof![
                "Content-Length: ([0-9]{1,3}|\\+5|-1|1, 1|3, 4|99999999999999999999)",
                Just("Transfer-Encoding: chunked".to_string()),
                Just("Transfer-Encoding: gzip".to_string()),
                Just("Connection: close".to_string()),
                "X-[a-z]{1,4}:[ -~]{0,10}",
            ],
            0..4,
        ),
        prop_oneof![
            "[a-z]{0,12}",
            Just("5\r\nhello\r\n0\r\n\r\n".to_string()),
            Just("5;x=y\r\nhello\r\n0\r\nT: 1\r\n\r\n".to_string()),
            Just("3\nabc\n0\n\n".to_string()),
            "[0-9a-f]{1,4}\r\n[a-z]{0,8}\r\n",
        ],
        prop_oneof![Just("\r\n"), Just("\n")],
    )
        .prop_map(|(status, hs, body, eol)| {
            let mut r = format!("{status}{eol}");
            for h in hs {
                r.push_str(&h);
                r.push_str(eol);
            }
            r.push_str(eol);
            r.push_str(&body);
            r
        });
    (any::<u8>(), prop::collection::vec(response, 1..3)).prop_map(|(sel, rs)| {
        let mut v = vec![sel];
        v.extend_from_slice(rs.concat().as_bytes());
        v
    })
}

/// The fuzz seeds themselves run through the entry points (every committed seed
/// must pass; a crash the fuzzer found is added to the seeds once fixed).
#[test]
fn fuzz_seed_corpus_passes() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut n = 0;
    for (target, run) in [
        (
            "request_head",
            &(|b: &[u8]| {
                if let Some(h) = parsed(b) {
                    fuzz_api::request_head(&h)
                }
            }) as &dyn Fn(&[u8]),
        ),
        ("admin_request", &|b: &[u8]| {
            if let Some(h) = parsed(b) {
                fuzz_api::admin_request(&h)
            }
        }),
        ("config", &|b: &[u8]| {
            if let Ok(s) = std::str::from_utf8(b) {
                fuzz_api::config(s)
            }
        }),
        ("duration", &|b: &[u8]| {
            if let Ok(s) = std::str::from_utf8(b) {
                fuzz_api::duration(s)
            }
            fuzz_api::grpc(b)
        }),
        ("sticky_cookie", &fuzz_api::sticky_cookie),
        ("route_rules", &fuzz_api::route_rules),
        ("h1_codec", &|b: &[u8]| {
            fuzz_api::h1_head(b);
            fuzz_api::h1_connection(b);
        }),
        ("upstream_response", &fuzz_api::upstream_response),
        ("upstream_h2", &fuzz_api::upstream_h2),
        ("hpack", &fuzz_api::hpack::hpack),
        ("h2_server", &fuzz_api::h2_server),
    ] {
        for entry in std::fs::read_dir(dir.join(target)).expect("seed corpus") {
            let path = entry.expect("dir entry").path();
            run(&std::fs::read(&path).expect("seed"));
            n += 1;
        }
    }
    assert!(n >= 100, "only {n} seeds");
}

/// Input of the `hpack` target: a table-size byte, a list-limit byte, then
/// length-prefixed field blocks as an encoder with a dynamic table and Huffman
/// makes them (random fields and resizes), some with one byte flipped.
fn hpack_bytes() -> impl Strategy<Value = Vec<u8>> {
    use drover::h2wire::hpack::IndexingEncoder;
    let name = prop_oneof![
        prop::sample::select(vec![
            ":method",
            ":path",
            ":status",
            "accept-encoding",
            "cookie"
        ])
        .prop_map(String::from),
        "[a-z-]{1,12}",
    ];
    let field = (name, "[ -~]{0,24}", any::<bool>());
    let block = (
        proptest::option::of(0usize..=8160),
        prop::collection::vec(field, 0..6),
        proptest::option::of((any::<usize>(), 1..=255u8)),
    );
    (any::<u8>(), any::<u8>(), prop::collection::vec(block, 1..5)).prop_map(
        |(size, limit, blocks)| {
            let max = usize::from(size) * 32;
            let mut enc = IndexingEncoder::new(max);
            let mut out = vec![size, limit];
            for (resize, fields, flip) in blocks {
                if let Some(r) = resize {
                    enc.resize(r.min(max));
                }
                let fields: Vec<(&[u8], &[u8], bool)> = fields
                    .iter()
                    .map(|(n, v, ni)| (n.as_bytes(), v.as_bytes(), *ni))
                    .collect();
                let mut b = Vec::new();
                enc.encode(&fields, &mut b);
                if let Some((at, x)) = flip {
                    let at = at % b.len().max(1);
                    if let Some(byte) = b.get_mut(at) {
                        *byte ^= x;
                    }
                }
                b.truncate(255);
                out.push(b.len() as u8);
                out.extend_from_slice(&b);
            }
            out
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn hpack_twin_structured(bytes in hpack_bytes()) {
        fuzz_api::hpack::hpack(&bytes);
    }

    #[test]
    fn hpack_twin_raw_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        fuzz_api::hpack::hpack(&bytes);
    }
}

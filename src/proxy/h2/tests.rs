//! The request-head rules of RFC 9113 §8.3.1 / §8.2.2, on field blocks built
//! with the stateless encoder (and the indexing one for the table's paths).

use bytes::BytesMut;
use proptest::prelude::*;

use super::request::{Decoded, Head, HeadDecoder};
use crate::h2wire::hpack::{encode_field, IndexingEncoder, DEFAULT_TABLE_SIZE};

fn block(fields: &[(&str, &str)]) -> BytesMut {
    let mut b = BytesMut::new();
    for (n, v) in fields {
        encode_field(&mut b, n.as_bytes(), v.as_bytes(), false);
    }
    b
}

fn head(fields: &[(&str, &str)]) -> Decoded<Head> {
    let mut dec = HeadDecoder::new(DEFAULT_TABLE_SIZE);
    dec.decode(&block(fields), 16 * 1024).expect("hpack")
}

fn malformed(fields: &[(&str, &str)]) -> &'static str {
    match head(fields) {
        Decoded::Malformed(why) => why,
        other => panic!("{fields:?} should be malformed, got {other:?}"),
    }
}

const GET: [(&str, &str); 4] = [
    (":method", "GET"),
    (":scheme", "http"),
    (":authority", "example.test"),
    (":path", "/a?b=c"),
];

#[test]
fn a_plain_request_keeps_its_parts_and_fields() {
    let mut f = GET.to_vec();
    f.push(("accept", "text/plain"));
    f.push(("cookie", "a=1"));
    f.push(("cookie", "b=2"));
    let Decoded::Ok(h) = head(&f) else {
        panic!("not ok")
    };
    assert_eq!(h.method, http::Method::GET);
    assert_eq!(h.uri.to_string(), "http://example.test/a?b=c");
    assert_eq!(h.headers["accept"], "text/plain");
    assert_eq!(h.headers.get_all("cookie").iter().count(), 2);
    assert_eq!(h.content_length, None);
    assert!(!h.expects_continue);
}

#[test]
fn without_authority_the_target_is_the_path() {
    let Decoded::Ok(h) = head(&[
        (":method", "POST"),
        (":scheme", "https"),
        (":path", "/up"),
        ("host", "h.test"),
        ("content-length", "12"),
        ("expect", "100-Continue"),
    ]) else {
        panic!("not ok")
    };
    assert_eq!(h.uri.to_string(), "/up");
    assert_eq!(h.content_length, Some(12));
    assert!(h.expects_continue);
}

#[test]
fn connect_takes_only_an_authority() {
    let Decoded::Ok(h) = head(&[(":method", "CONNECT"), (":authority", "db.test:5432")]) else {
        panic!("not ok")
    };
    assert_eq!(h.uri.authority().unwrap().as_str(), "db.test:5432");
    assert_eq!(
        malformed(&[
            (":method", "CONNECT"),
            (":authority", "a:1"),
            (":path", "/")
        ]),
        "CONNECT with :scheme or :path"
    );
    assert_eq!(
        malformed(&[(":method", "CONNECT")]),
        "CONNECT without :authority"
    );
}

#[test]
fn each_broken_rule_names_itself() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[(":scheme", "http"), (":path", "/")], "no :method"),
        (&[(":method", "GET"), (":path", "/")], "no :scheme"),
        (&[(":method", "GET"), (":scheme", "http")], "no :path"),
        (
            &[(":method", "GET"), (":scheme", "http"), (":path", "")],
            "empty :path",
        ),
        (
            &[(":method", "GET"), (":method", "GET"), (":scheme", "http")],
            "repeated pseudo-header field",
        ),
        (
            &[(":method", "GET"), (":status", "200")],
            "unknown pseudo-header field",
        ),
        (
            &[(":method", "GET"), ("a", "b"), (":path", "/")],
            "pseudo-header field after a regular field, or in trailers",
        ),
        (
            &[(":method", "GET"), ("Accept", "x")],
            "uppercase field name",
        ),
        (
            &[(":method", "GET"), ("connection", "close")],
            "connection-specific field",
        ),
        (
            &[(":method", "GET"), ("transfer-encoding", "chunked")],
            "connection-specific field",
        ),
        (
            &[(":method", "GET"), ("te", "gzip")],
            "connection-specific field",
        ),
        (&[(":method", "GET"), ("a b", "x")], "invalid field name"),
        (&[(":method", "GET"), ("a", "x\ny")], "invalid field value"),
        (
            &[(":method", "G T"), (":scheme", "http"), (":path", "/")],
            "invalid :method",
        ),
        (
            &[(":method", "GET"), (":scheme", "http"), (":path", "/ x")],
            "invalid :path",
        ),
    ];
    for (fields, why) in cases {
        assert_eq!(malformed(fields), *why, "{fields:?}");
    }
    let mut f = GET.to_vec();
    f.push(("content-length", "3"));
    f.push(("content-length", "4"));
    assert_eq!(malformed(&f), "conflicting content-length");
    let mut f = GET.to_vec();
    f.push(("content-length", "-1"));
    assert_eq!(malformed(&f), "invalid content-length");
    let mut f = GET.to_vec();
    f.push(("te", "trailers"));
    assert!(matches!(head(&f), Decoded::Ok(_)));
}

#[test]
fn a_list_over_the_limit_is_too_large_and_the_table_stays_in_step() {
    let mut enc = IndexingEncoder::new(DEFAULT_TABLE_SIZE);
    let big = "v".repeat(300);
    let fields: Vec<(&[u8], &[u8], bool)> = vec![
        (b":method", b"GET", false),
        (b":scheme", b"http", false),
        (b":path", b"/", false),
        (b"x-big", big.as_bytes(), false),
    ];
    let mut first = Vec::new();
    enc.encode(&fields, &mut first);
    let mut second = Vec::new();
    enc.encode(&fields, &mut second);
    let mut dec = HeadDecoder::new(DEFAULT_TABLE_SIZE);
    assert!(matches!(
        dec.decode(&first, 200).unwrap(),
        Decoded::TooLarge
    ));
    // The second block indexes what the first inserted.
    let Decoded::Ok(h) = dec.decode(&second, 16 * 1024).unwrap() else {
        panic!("not ok")
    };
    assert_eq!(h.headers["x-big"].len(), 300);
}

#[test]
fn trailers_take_no_pseudo_fields() {
    let mut dec = HeadDecoder::new(DEFAULT_TABLE_SIZE);
    let ok = block(&[("grpc-status", "0"), ("grpc-message", "fine")]);
    let Decoded::Ok(t) = dec.decode_trailers(&ok, 4096).unwrap() else {
        panic!("not ok")
    };
    assert_eq!(t["grpc-status"], "0");
    let bad = block(&[(":status", "200")]);
    assert!(matches!(
        dec.decode_trailers(&bad, 4096).unwrap(),
        Decoded::Malformed(_)
    ));
}

#[test]
fn broken_hpack_is_a_connection_error() {
    let mut dec = HeadDecoder::new(DEFAULT_TABLE_SIZE);
    // Indexed field 70: past the static table, the dynamic one is empty.
    assert!(dec.decode(&[0xC6], 4096).is_err());
    // A literal whose length runs past the block.
    assert!(dec.decode(&[0x00, 0x05, b'a'], 4096).is_err());
}

proptest! {
    /// Any bytes: an answer, never a panic; a head that decodes as Ok has
    /// a method and lowercase, non-connection-specific fields.
    #[test]
    fn any_block_gets_an_answer(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let mut dec = HeadDecoder::new(DEFAULT_TABLE_SIZE);
        if let Ok(Decoded::Ok(h)) = dec.decode(&bytes, 4096) {
            for (n, _) in &h.headers {
                prop_assert!(!matches!(n.as_str(), "connection" | "transfer-encoding" | "upgrade"));
            }
        }
    }

    /// Well-formed heads round-trip through the encoder: names, values and
    /// their order per name are kept.
    #[test]
    fn well_formed_heads_round_trip(
        fields in proptest::collection::vec(("[a-z][a-z0-9-]{0,12}", "[ -~]{0,40}"), 0..12),
    ) {
        let fields: Vec<(String, String)> = fields
            .into_iter()
            .filter(|(n, _)| !matches!(n.as_str(), "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" | "te" | "content-length"))
            .map(|(n, v)| (n, v.trim().to_string()))
            .collect();
        let mut all: Vec<(&str, &str)> = GET.to_vec();
        all.extend(fields.iter().map(|(n, v)| (n.as_str(), v.as_str())));
        let Decoded::Ok(h) = head(&all) else { panic!("{all:?} not ok") };
        for (n, v) in &fields {
            prop_assert!(h.headers.get_all(n.as_str()).iter().any(|x| x.as_bytes() == v.as_bytes()));
        }
        let total: usize = h.headers.len();
        prop_assert_eq!(total, fields.len());
    }
}

#[test]
fn heads_decoded_in_a_row_keep_their_own_values() {
    // Values of many heads share the decoder's buffers: each keeps its own.
    let mut dec = HeadDecoder::new(DEFAULT_TABLE_SIZE);
    let mut heads = Vec::new();
    for i in 0..300 {
        let v = format!("value-{i}-{}", "x".repeat(i % 97));
        let mut f = GET.to_vec();
        f.push(("x-n", &v));
        let Decoded::Ok(h) = dec.decode(&block(&f), 16 * 1024).unwrap() else {
            panic!("not ok")
        };
        heads.push((v, h));
        // A malformed one between: its values go nowhere.
        let _ = dec.decode(&block(&[(":method", "GET"), ("X-Bad", "1")]), 16 * 1024);
    }
    for (v, h) in &heads {
        assert_eq!(h.headers["x-n"], v.as_str());
        assert_eq!(h.uri.path(), "/a");
    }
}

//! RFC 7541 Appendix C, the error cases of hostile blocks, and round trips.

use bytes::BytesMut;
use proptest::prelude::*;

use super::table::STATIC;
use super::*;

type Field = (Vec<u8>, Vec<u8>, bool);

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

fn decode_with(d: &mut Decoder, block: &[u8], max_list: usize) -> Result<Vec<Field>, HpackError> {
    let mut out = Vec::new();
    d.decode(block, max_list, |n, v, ni| {
        out.push((n.to_vec(), v.to_vec(), ni))
    })?;
    Ok(out)
}

fn decode(d: &mut Decoder, block: &[u8]) -> Result<Vec<Field>, HpackError> {
    decode_with(d, block, usize::MAX)
}

fn list(fields: &[(&str, &str)]) -> Vec<Field> {
    fields
        .iter()
        .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec(), false))
        .collect()
}

fn table(d: &Decoder) -> Vec<(String, String)> {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    d.table.iter().map(|(n, v)| (s(n), s(v))).collect()
}

fn owned(fields: &[(&str, &str)]) -> Vec<(String, String)> {
    fields
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

#[test]
fn c2_field_representations() {
    let mut d = Decoder::new(4096);
    let got = decode(
        &mut d,
        &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
    );
    assert_eq!(got, Ok(list(&[("custom-key", "custom-header")])));
    assert_eq!(
        (d.table_size(), table(&d)),
        (55, owned(&[("custom-key", "custom-header")]))
    );

    let mut d = Decoder::new(4096);
    let got = decode(&mut d, &hex("040c 2f73 616d 706c 652f 7061 7468"));
    assert_eq!(got, Ok(list(&[(":path", "/sample/path")])));
    assert_eq!(d.table_size(), 0);

    let got = decode(&mut d, &hex("1008 7061 7373 776f 7264 0673 6563 7265 74"));
    assert_eq!(
        got,
        Ok(vec![(b"password".to_vec(), b"secret".to_vec(), true)])
    );
    assert_eq!(decode(&mut d, &hex("82")), Ok(list(&[(":method", "GET")])));
    assert_eq!(d.table_size(), 0);
}

/// C.3 (raw) or C.4 (Huffman): three requests on one decoder.
fn requests(blocks: [&str; 3]) {
    let mut d = Decoder::new(4096);
    let first = [
        (":method", "GET"),
        (":scheme", "http"),
        (":path", "/"),
        (":authority", "www.example.com"),
    ];
    assert_eq!(decode(&mut d, &hex(blocks[0])), Ok(list(&first)));
    assert_eq!(
        (d.table_size(), table(&d)),
        (57, owned(&[(":authority", "www.example.com")]))
    );

    let mut second = first.to_vec();
    second.push(("cache-control", "no-cache"));
    assert_eq!(decode(&mut d, &hex(blocks[1])), Ok(list(&second)));
    let t2 = [
        ("cache-control", "no-cache"),
        (":authority", "www.example.com"),
    ];
    assert_eq!((d.table_size(), table(&d)), (110, owned(&t2)));

    let third = [
        (":method", "GET"),
        (":scheme", "https"),
        (":path", "/index.html"),
        (":authority", "www.example.com"),
        ("custom-key", "custom-value"),
    ];
    assert_eq!(decode(&mut d, &hex(blocks[2])), Ok(list(&third)));
    let t3 = [("custom-key", "custom-value"), t2[0], t2[1]];
    assert_eq!((d.table_size(), table(&d)), (164, owned(&t3)));
}

#[test]
fn c3_requests_without_huffman() {
    requests([
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
        "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
    ]);
}

#[test]
fn c4_requests_with_huffman() {
    requests([
        "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
        "8286 84be 5886 a8eb 1064 9cbf",
        "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
    ]);
}

const DATE1: &str = "Mon, 21 Oct 2013 20:13:21 GMT";
const DATE2: &str = "Mon, 21 Oct 2013 20:13:22 GMT";
const COOKIE: &str = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
const LOC: &str = "https://www.example.com";

/// C.5 (raw) or C.6 (Huffman): three responses, table of 256 bytes, evictions.
fn responses(blocks: [&str; 3]) {
    let mut d = Decoder::new(256);
    let first = [
        (":status", "302"),
        ("cache-control", "private"),
        ("date", DATE1),
        ("location", LOC),
    ];
    assert_eq!(decode(&mut d, &hex(blocks[0])), Ok(list(&first)));
    let t1 = [
        ("location", LOC),
        ("date", DATE1),
        ("cache-control", "private"),
        (":status", "302"),
    ];
    assert_eq!((d.table_size(), table(&d)), (222, owned(&t1)));

    let second = [(":status", "307"), first[1], first[2], first[3]];
    assert_eq!(decode(&mut d, &hex(blocks[1])), Ok(list(&second)));
    let t2 = [(":status", "307"), t1[0], t1[1], t1[2]];
    assert_eq!((d.table_size(), table(&d)), (222, owned(&t2)));

    let third = [
        (":status", "200"),
        ("cache-control", "private"),
        ("date", DATE2),
        ("location", LOC),
        ("content-encoding", "gzip"),
        ("set-cookie", COOKIE),
    ];
    assert_eq!(decode(&mut d, &hex(blocks[2])), Ok(list(&third)));
    let t3 = [
        ("set-cookie", COOKIE),
        ("content-encoding", "gzip"),
        ("date", DATE2),
    ];
    assert_eq!((d.table_size(), table(&d)), (215, owned(&t3)));
}

#[test]
fn c5_responses_without_huffman() {
    responses([
        "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
         2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
         6c65 2e63 6f6d",
        "4803 3330 37c1 c0bf",
        "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
         54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
         5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
    ]);
}

#[test]
fn c6_responses_with_huffman() {
    responses([
        "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
         2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
        "4883 640e ffc1 c0bf",
        "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
         77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
         9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ]);
}

#[test]
fn huffman_tree_is_complete() {
    assert_eq!(huffman::tree_check(), (256, true));
}

#[test]
fn huffman_known_vectors() {
    for (text, code) in [
        ("www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"),
        ("no-cache", "a8eb 1064 9cbf"),
        ("custom-key", "25a8 49e9 5ba9 7d7f"),
        ("custom-value", "25a8 49e9 5bb8 e8b4 bf"),
        ("302", "6402"),
        ("307", "640e ff"),
        ("private", "aec3 771a 4b"),
        (DATE1, "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"),
        (LOC, "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"),
        ("gzip", "9bd9 ab"),
        (COOKIE, "94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07"),
        ("", ""),
    ] {
        let mut enc = Vec::new();
        huffman::encode(text.as_bytes(), &mut enc);
        assert_eq!(enc, hex(code), "{text}");
        assert_eq!(huffman::encoded_len(text.as_bytes()), enc.len());
        let mut dec = Vec::new();
        assert_eq!(huffman::decode(&hex(code), &mut dec), Ok(()));
        assert_eq!(dec, text.as_bytes());
    }
}

#[test]
fn huffman_errors() {
    for (bad, why) in [
        ("ffff ffff", "EOS (30 ones) inside the string"),
        ("1fff", "'a' then 11 bits of padding"),
        ("ff", "8 bits of padding"),
        ("18", "'a' then padding 000"),
        ("1e", "'a' then padding 110"),
    ] {
        assert_eq!(
            huffman::decode(&hex(bad), &mut Vec::new()),
            Err(HpackError::BadHuffman),
            "{why}"
        );
    }
    let mut out = Vec::new();
    assert_eq!(huffman::decode(&hex("1f"), &mut out), Ok(()));
    assert_eq!(out, b"a");
}

#[test]
fn hostile_blocks_are_errors() {
    use HpackError::*;
    for (block, want) in [
        ("ff", Truncated),
        ("41", Truncated),
        ("82 410f 77", Truncated),
        ("40 0a 6375", Truncated),
        ("80", BadIndex(0)),
        ("be", BadIndex(62)),
        ("7f01 00", BadIndex(64)),
        ("0f2f 00", BadIndex(62)),
        ("ff80 8080 8001", BadIndex(127 + (1 << 28))),
        ("ffff ffff ffff 7f", IntegerOverflow),
        ("ff80 8080 8010", IntegerOverflow),
        ("0081 ff00", BadHuffman),
        ("0084 ffff ffff 00", BadHuffman),
        ("0081 1800", BadHuffman),
        ("4001 61 81 1e", BadHuffman),
        ("3fe2 1f", SizeUpdateTooLarge),
        ("3fff ffff ffff 7f", IntegerOverflow),
        ("82 20", SizeUpdateNotFirst),
        ("0001 6100 20", SizeUpdateNotFirst),
        ("2020 20", TooManySizeUpdates),
    ] {
        let mut d = Decoder::new(4096);
        assert_eq!(decode(&mut d, &hex(block)), Err(want.clone()), "{block}");
        assert!(!want.list_too_large());
    }
    let mut d = Decoder::new(4096);
    assert_eq!(decode(&mut d, &[]), Ok(vec![]));
    assert_eq!(
        decode(&mut d, &hex("203f e11f 82")),
        Ok(list(&[(":method", "GET")]))
    );
    assert_eq!(d.table_max_size(), 4096);
}

#[test]
fn size_update_evicts_and_shrinks() {
    let mut d = Decoder::new(4096);
    requests_state(&mut d);
    assert_eq!(decode(&mut d, &hex("3f15")), Ok(vec![])); // 31 + 21 = 52: the last entry (53) goes too
    assert_eq!(
        (d.table_size(), d.table_max_size(), d.table.len()),
        (0, 52, 0)
    );
    assert_eq!(decode(&mut d, &hex("be")), Err(HpackError::BadIndex(62)));
}

fn requests_state(d: &mut Decoder) {
    for b in [
        "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
        "8286 84be 5808 6e6f 2d63 6163 6865",
    ] {
        decode(d, &hex(b)).unwrap();
    }
}

#[test]
fn oversized_entry_empties_the_table_and_evicted_names_are_copied() {
    let mut d = Decoder::new(60);
    decode(
        &mut d,
        &hex("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572"),
    )
    .unwrap();
    // custom-key (by index 62, the entry this insertion evicts): abc.
    assert_eq!(
        decode(&mut d, &hex("7e03 6162 63")),
        Ok(list(&[("custom-key", "abc")]))
    );
    assert_eq!(
        (d.table_size(), table(&d)),
        (45, owned(&[("custom-key", "abc")]))
    );
    // 10 + 30 + 32 = 72 > 60: the table empties, nothing is added.
    let mut block = hex("400a 6375 7374 6f6d 2d6b 6579 1e");
    block.extend_from_slice(&[b'x'; 30]);
    assert_eq!(decode(&mut d, &block).unwrap().len(), 1);
    assert_eq!((d.table_size(), d.table.len()), (0, 0));
}

#[test]
fn too_large_stops_fields_and_keeps_the_table() {
    let mut d = Decoder::new(4096);
    let mut got = Vec::new();
    let r = d.decode(
        &hex("8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d"),
        50,
        |n, v, _| got.push((n.to_vec(), v.to_vec())),
    );
    assert_eq!(r, Err(HpackError::TooLarge));
    assert!(r.unwrap_err().list_too_large());
    assert_eq!(got, vec![(b":method".to_vec(), b"GET".to_vec())]);
    assert_eq!(d.table_size(), 57);
    let second = decode(&mut d, &hex("8286 84be 5808 6e6f 2d63 6163 6865")).unwrap();
    assert_eq!(
        second[3],
        (b":authority".to_vec(), b"www.example.com".to_vec(), false)
    );
    // A connection error wins over TooLarge.
    assert_eq!(
        decode_with(&mut d, &hex("8286 80"), 0),
        Err(HpackError::BadIndex(0))
    );
}

#[test]
fn stateless_encoding() {
    let enc = |name: &str, value: &str, ni: bool| {
        let mut b = BytesMut::new();
        encode_field(&mut b, name.as_bytes(), value.as_bytes(), ni);
        b.to_vec()
    };
    assert_eq!(enc(":method", "GET", false), hex("82"));
    assert_eq!(enc(":path", "/", false), hex("84"));
    assert_eq!(enc(":scheme", "http", false), hex("86"));
    assert_eq!(enc("accept-encoding", "gzip, deflate", false), hex("90"));
    assert_eq!(enc("accept", "", false), hex("93"));
    assert_eq!(
        enc(":path", "/sample/path", false),
        hex("040c 2f73 616d 706c 652f 7061 7468")
    );
    assert_eq!(
        enc("password", "secret", true),
        hex("1008 7061 7373 776f 7264 0673 6563 7265 74")
    );
    assert_eq!(enc(":method", "GET", true), hex("1203 4745 54"));
    // Lengths past the 7-bit prefix: 127 + continuation bytes (§5.1).
    let long_name = "x".repeat(200);
    let long_value = "v".repeat(20_000);
    let b = enc(&long_name, &long_value, false);
    let mut want = hex("00 7f49");
    want.extend_from_slice(long_name.as_bytes());
    want.extend_from_slice(&hex("7fa1 9b01"));
    want.extend_from_slice(long_value.as_bytes());
    assert_eq!(b, want);
    // A static name (index 15 past the 4-bit prefix: 0f 00) with a long value.
    let b = enc("accept-charset", &long_value, false);
    assert_eq!(b.get(..5), Some(&hex("0f00 7fa1 9b")[..]));
    assert_eq!(enc("www-authenticate", "x", false), hex("0f2e 0178"));
    let status = |s: u16| {
        let mut b = BytesMut::new();
        encode_status(&mut b, s);
        b.to_vec()
    };
    for (s, i) in [
        (200, 8),
        (204, 9),
        (206, 10),
        (304, 11),
        (400, 12),
        (404, 13),
        (500, 14),
    ] {
        assert_eq!(status(s), vec![0x80 | i]);
    }
    assert_eq!(status(302), hex("0803 3330 32"));
    assert_eq!(status(1000), hex("0804 3130 3030"));
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(STATIC.iter().map(|e| e.0.to_vec()).collect::<Vec<_>>()),
        "[a-z][a-z0-9-]{0,14}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..20),
    ]
}

fn value() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::sample::select(STATIC.iter().map(|e| e.1.to_vec()).collect::<Vec<_>>()),
        "[ -~]{0,30}".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..100),
    ]
}

fn fields(max: usize) -> impl Strategy<Value = Vec<Field>> {
    prop::collection::vec((name(), value(), any::<bool>()), 0..max)
}

fn borrowed(fields: &[Field]) -> Vec<(&[u8], &[u8], bool)> {
    fields
        .iter()
        .map(|(n, v, ni)| (&n[..], &v[..], *ni))
        .collect()
}

proptest! {
    #[test]
    fn huffman_round_trip(s in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut enc = Vec::new();
        huffman::encode(&s, &mut enc);
        prop_assert_eq!(enc.len(), huffman::encoded_len(&s));
        let mut dec = vec![7];
        prop_assert_eq!(huffman::decode(&enc, &mut dec), Ok(()));
        prop_assert_eq!(&dec[1..], &s[..]);
    }

    #[test]
    fn encode_field_round_trip(fields in fields(12)) {
        let mut block = BytesMut::new();
        for (n, v, ni) in &fields {
            encode_field(&mut block, n, v, *ni);
        }
        let mut d = Decoder::new(4096);
        let got = decode(&mut d, &block).unwrap();
        // Full static matches come back indexed, never-indexed fields as such.
        prop_assert_eq!(got, fields);
        prop_assert_eq!(d.table_size(), 0);
    }

    #[test]
    fn indexing_encoder_round_trip(
        blocks in prop::collection::vec((prop::collection::vec(0usize..=4096, 0..3), fields(10)), 1..8)
    ) {
        let mut e = IndexingEncoder::new(4096);
        let mut d = Decoder::new(4096);
        for (resizes, fields) in &blocks {
            for &r in resizes {
                e.resize(r);
            }
            let mut block = Vec::new();
            e.encode(&borrowed(fields), &mut block);
            prop_assert_eq!(&decode(&mut d, &block).unwrap(), fields);
            prop_assert!(d.table_size() <= d.table_max_size());
            prop_assert_eq!(d.table.iter().collect::<Vec<_>>(), e.table.iter().collect::<Vec<_>>());
        }
    }

    #[test]
    fn arbitrary_blocks_never_panic(
        max in 0usize..5000,
        blocks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..120), 1..6),
    ) {
        let mut d = Decoder::new(max);
        for b in &blocks {
            let _ = d.decode(b, 300, |_, _, _| {});
            prop_assert!(d.table_size() <= d.table_max_size() && d.table_max_size() <= max);
        }
    }

    #[test]
    fn too_large_keeps_the_table_in_step(
        first in fields(10), second in fields(10), max_list in 0usize..400,
    ) {
        let mut e = IndexingEncoder::new(4096);
        let mut d = Decoder::new(4096);
        let (mut b1, mut b2) = (Vec::new(), Vec::new());
        e.encode(&borrowed(&first), &mut b1);
        e.encode(&borrowed(&second), &mut b2);
        let mut got = Vec::new();
        let r = d.decode(&b1, max_list, |n, v, ni| got.push((n.to_vec(), v.to_vec(), ni)));
        let size: usize = first.iter().map(|(n, v, _)| n.len() + v.len() + 32).sum();
        prop_assert_eq!(r.is_err(), size > max_list);
        prop_assert!(r.is_ok() || r == Err(HpackError::TooLarge));
        prop_assert!(first.starts_with(&got));
        prop_assert!(got.iter().map(|(n, v, _)| n.len() + v.len() + 32).sum::<usize>() <= max_list);
        prop_assert_eq!(decode(&mut d, &b2).unwrap(), second);
    }
}

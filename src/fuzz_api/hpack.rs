//! The HPACK decoder (`h2wire::hpack`) under hostile field blocks, and the
//! encoders round-tripping what it decoded.

use bytes::BytesMut;

use crate::h2wire::hpack::{self, huffman, Decoder, HpackError, IndexingEncoder};

type Fields = Vec<(Vec<u8>, Vec<u8>, bool)>;

/// Reads `bytes` as: a byte selecting the advertised table size (× 32 bytes:
/// 8 → 256, 128 → 4096), a byte selecting the header list limit (× 16 bytes,
/// 255: none), then field blocks, each a length byte and that many bytes (the
/// last one whatever is left), decoded in turn on one decoder until a
/// connection error. Invariants: no panic; the dynamic table never exceeds
/// its current maximum, nor that the advertised size; the fields handed out
/// stay within the list limit, and all of them are when the block decodes
/// Ok; a decoded list re-encoded by `encode_field` (fresh decoder) and by an
/// `IndexingEncoder` (one kept across blocks, with its decoder) decodes back
/// equal; a string the Huffman decoder accepts re-encodes to the same bytes
/// (the code is a prefix code with at most 7 bits of one-padding), and every
/// value round-trips through the Huffman coder; a decoder that remembers its
/// Huffman strings (`Decoder::remember_strings`) decodes every block to the
/// same fields and outcome as one that does not.
pub fn hpack(bytes: &[u8]) {
    let [size_sel, list_sel, rest @ ..] = bytes else {
        return;
    };
    let max_table = usize::from(*size_sel) * 32;
    let max_list = match list_sel {
        255 => usize::MAX,
        n => usize::from(*n) * 16,
    };
    let mut decoder = Decoder::new(max_table);
    let mut encoder = IndexingEncoder::new(max_table);
    let mut mirror = Decoder::new(max_table);
    // The same blocks through a decoder that remembers its Huffman strings:
    // the same fields and the same outcome, block after block.
    let mut remembering = Decoder::new(max_table);
    remembering.remember_strings();
    let mut rest = rest;
    while let Some((&len, tail)) = rest.split_first() {
        let (block, tail) = tail
            .split_at_checked(usize::from(len))
            .unwrap_or((tail, &[]));
        rest = tail;
        huffman_canonical(block);
        let mut fields = Fields::new();
        let result = decoder.decode(block, max_list, |n, v, ni| {
            fields.push((n.to_vec(), v.to_vec(), ni))
        });
        let mut again = Fields::new();
        let result_again = remembering.decode(block, max_list, |n, v, ni| {
            again.push((n.to_vec(), v.to_vec(), ni))
        });
        assert_eq!(
            result_again, result,
            "remembered strings change the outcome"
        );
        assert_eq!(again, fields, "remembered strings change the fields");
        assert!(decoder.table_size() <= decoder.table_max_size());
        assert!(decoder.table_max_size() <= max_table);
        let delivered: usize = fields.iter().map(|(n, v, _)| n.len() + v.len() + 32).sum();
        assert!(delivered <= max_list, "{delivered} > {max_list}");
        match result {
            Ok(()) => {}
            Err(HpackError::TooLarge) => continue,
            Err(e) => {
                assert!(!e.list_too_large());
                return;
            }
        }
        stateless_round_trip(&fields);
        indexing_round_trip(&fields, &mut encoder, &mut mirror);
    }
}

/// A Huffman string that decodes re-encodes to itself.
fn huffman_canonical(block: &[u8]) {
    let mut decoded = Vec::new();
    if huffman::decode(block, &mut decoded).is_ok() {
        let mut again = Vec::new();
        huffman::encode(&decoded, &mut again);
        assert_eq!(again, block, "huffman decode then encode differs");
    }
}

fn decode_all(d: &mut Decoder, block: &[u8]) -> Fields {
    let mut out = Fields::new();
    let r = d.decode(block, usize::MAX, |n, v, ni| {
        out.push((n.to_vec(), v.to_vec(), ni))
    });
    assert_eq!(r, Ok(()), "re-encoded block fails to decode");
    out
}

fn stateless_round_trip(fields: &Fields) {
    let mut block = BytesMut::new();
    for (n, v, ni) in fields {
        hpack::encode_field(&mut block, n, v, *ni);
        let mut again = Vec::new();
        huffman::encode(v, &mut again);
        let mut back = Vec::new();
        assert_eq!(huffman::decode(&again, &mut back), Ok(()));
        assert_eq!(&back, v, "huffman round trip");
    }
    let mut fresh = Decoder::new(hpack::DEFAULT_TABLE_SIZE);
    assert_eq!(
        &decode_all(&mut fresh, &block),
        fields,
        "encode_field round trip"
    );
    assert_eq!(fresh.table_size(), 0);
}

fn indexing_round_trip(fields: &Fields, encoder: &mut IndexingEncoder, mirror: &mut Decoder) {
    let list: Vec<(&[u8], &[u8], bool)> = fields
        .iter()
        .map(|(n, v, ni)| (&n[..], &v[..], *ni))
        .collect();
    let mut block = Vec::new();
    encoder.encode(&list, &mut block);
    assert_eq!(
        &decode_all(mirror, &block),
        fields,
        "indexing encoder round trip"
    );
}

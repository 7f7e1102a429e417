//! Encoders: the stateless one drover sends with ([`encode_field`],
//! [`encode_status`]) and [`IndexingEncoder`], for tests and fuzzing.

use bytes::{BufMut, BytesMut};

use super::huffman;
use super::table::{static_lookup, DynTable, Name, STATIC_LEN};

/// Writes `value` as an integer with a `prefix`-bit prefix (§5.1), `flags`
/// holding the bits above the prefix in the first byte; `prefix` in 1..=8.
pub(super) fn put_int(dst: &mut impl BufMut, flags: u8, prefix: u32, value: usize) {
    let max = usize::from(u8::MAX >> (8 - prefix.clamp(1, 8)));
    if value < max {
        dst.put_u8(flags | value as u8);
        return;
    }
    dst.put_u8(flags | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        dst.put_u8(0x80 | (rest & 0x7f) as u8);
        rest >>= 7;
    }
    dst.put_u8(rest as u8);
}

/// A raw string literal (§5.2, H = 0).
fn put_raw(dst: &mut impl BufMut, s: &[u8]) {
    put_int(dst, 0, 7, s.len());
    dst.put_slice(s);
}

/// Encodes one field statelessly, as HAProxy does: never inserts into the
/// dynamic table (so the peer's SETTINGS_HEADER_TABLE_SIZE never matters), a
/// static-table index for the name where there is one (a full index when name
/// AND value match a static entry, e.g. `:method GET`, `:scheme http`, `:path /`,
/// `:status 200`, `accept-encoding gzip, deflate` — unless `never_indexed`, whose
/// representation an intermediary must keep), the value as a raw literal (no
/// Huffman: cheaper to make, and loopback bytes are cheap). `never_indexed =
/// true` → the never-indexed representation (§6.2.3), else without indexing
/// (§6.2.2). Names are matched as given: HTTP/2 wants them lowercase.
pub fn encode_field(dst: &mut BytesMut, name: &[u8], value: &[u8], never_indexed: bool) {
    let found = static_lookup(name, value);
    if let (Some((_, Some(full))), false) = (found, never_indexed) {
        put_int(dst, 0x80, 7, full);
        return;
    }
    dst.reserve(name.len() + value.len() + 12);
    let flags = if never_indexed { 0x10 } else { 0x00 };
    match found {
        Some((index, _)) => put_int(dst, flags, 4, index),
        None => {
            dst.put_u8(flags);
            put_raw(dst, name);
        }
    }
    put_raw(dst, value);
}

/// Encodes `:status`: fully indexed for 200 204 206 304 400 404 500, else
/// name index 8 and the status as a literal without indexing (3 digits for
/// 100..=999, the decimal digits of any other value).
pub fn encode_status(dst: &mut BytesMut, status: u16) {
    let full: u8 = match status {
        200 => 8,
        204 => 9,
        206 => 10,
        304 => 11,
        400 => 12,
        404 => 13,
        500 => 14,
        _ => {
            let mut digits = itoa::Buffer::new();
            let digits = digits.format(status).as_bytes();
            dst.reserve(2 + digits.len());
            dst.put_u8(0x08);
            put_raw(dst, digits);
            return;
        }
    };
    dst.put_u8(0x80 | full);
}

/// An encoder that does use the dynamic table and Huffman coding, so that
/// round trips exercise every path of [`super::Decoder`]: fields are indexed
/// when the table has them, else sent as literals with incremental indexing
/// (values over 64 bytes without indexing; never-indexed ones as such),
/// strings Huffman-coded when that is shorter. For tests and fuzzing: drover
/// sends with [`encode_field`].
#[derive(Debug)]
pub struct IndexingEncoder {
    pub(super) table: DynTable,
    /// Size updates to send at the start of the next block: the smallest
    /// size asked since the last block, and the last one (§4.2).
    pending: Option<(usize, usize)>,
}

impl IndexingEncoder {
    /// An encoder whose table starts at `table_size` bytes: the decoder's
    /// `max_table_size` (both sides start at the advertised size).
    pub fn new(table_size: usize) -> IndexingEncoder {
        IndexingEncoder {
            table: DynTable::new(table_size),
            pending: None,
        }
    }

    /// Changes the table size (bytes, at most the decoder's `max_table_size`):
    /// the size update(s) go at the start of the next block, the smallest
    /// size asked first when it is below the last one.
    pub fn resize(&mut self, new_size: usize) {
        self.pending = Some(match self.pending {
            Some((smallest, _)) => (smallest.min(new_size), new_size),
            None => (new_size, new_size),
        });
    }

    /// Appends one field block holding `fields` (`(name, value, never_indexed)`).
    pub fn encode(&mut self, fields: &[(&[u8], &[u8], bool)], dst: &mut Vec<u8>) {
        if let Some((smallest, last)) = self.pending.take() {
            if smallest < last {
                put_int(dst, 0x20, 5, smallest);
                self.table.set_max(smallest);
            }
            put_int(dst, 0x20, 5, last);
            self.table.set_max(last);
        }
        for &(name, value, never_indexed) in fields {
            let (name_index, full) = self.lookup(name, value);
            if let (Some(full), false) = (full, never_indexed) {
                put_int(dst, 0x80, 7, full);
                continue;
            }
            let indexing = !never_indexed && value.len() <= 64;
            let (flags, prefix) = match (indexing, never_indexed) {
                (true, _) => (0x40, 6),
                (false, true) => (0x10, 4),
                (false, false) => (0x00, 4),
            };
            match name_index {
                Some(index) => put_int(dst, flags, prefix, index),
                None => {
                    dst.push(flags);
                    put_string(dst, name);
                }
            }
            put_string(dst, value);
            if indexing {
                self.table.push(Name::Literal(name), value);
            }
        }
    }

    /// The lowest index with this name and the lowest with this name and value.
    fn lookup(&self, name: &[u8], value: &[u8]) -> (Option<usize>, Option<usize>) {
        let (mut name_index, mut full) = match static_lookup(name, value) {
            Some((n, f)) => (Some(n), f),
            None => (None, None),
        };
        for (i, (n, v)) in self.table.iter().enumerate() {
            if full.is_some() {
                break;
            }
            if n == name {
                name_index = name_index.or(Some(STATIC_LEN + 1 + i));
                if v == value {
                    full = Some(STATIC_LEN + 1 + i);
                }
            }
        }
        (name_index, full)
    }
}

/// A string literal, Huffman-coded when that is shorter.
fn put_string(dst: &mut Vec<u8>, s: &[u8]) {
    let len = huffman::encoded_len(s);
    if len < s.len() {
        put_int(dst, 0x80, 7, len);
        huffman::encode(s, dst);
    } else {
        put_raw(dst, s);
    }
}

//! The decoder (RFC 7541 §3, §6): field blocks from a peer, every byte hostile.

use super::huffman;
use super::recent::Recent;
use super::table::{DynTable, Name, ENTRY_OVERHEAD};
use super::HpackError;

/// The most continuation bytes of an integer (§5.1): 5 carry 35 bits, more
/// than the `u32` values accepted.
const MAX_INT_CONTINUATIONS: u32 = 5;

/// Decodes the field blocks of one direction of one connection; keeps the
/// dynamic table (§2.3.2) in step with the peer's encoder across blocks.
#[derive(Debug)]
pub struct Decoder {
    pub(super) table: DynTable,
    /// The SETTINGS_HEADER_TABLE_SIZE we advertised (bytes): the ceiling of
    /// the peer's size updates.
    max_allowed: usize,
    /// Huffman-decoded strings of the current field (reused, never shrunk).
    scratch: Vec<u8>,
    /// Strings recently decoded, when [`Decoder::remember_strings`] was called.
    recent: Option<Recent>,
}

impl Decoder {
    /// `max_table_size`: the SETTINGS_HEADER_TABLE_SIZE we advertised (bytes,
    /// RFC 7541 §4.2; 4096 unless we sent another, [`super::DEFAULT_TABLE_SIZE`]);
    /// the peer's size updates may not exceed it. The table starts at that size.
    pub fn new(max_table_size: usize) -> Decoder {
        Decoder {
            table: DynTable::new(max_table_size),
            max_allowed: max_table_size,
            scratch: Vec::new(),
            recent: None,
        }
    }

    /// Keeps the last Huffman strings decoded (a few KiB, see
    /// [`super::recent`]) and answers repeats from them: for a peer that
    /// sends the same values as Huffman literals again and again (a
    /// backend's response fields). Off by default.
    pub fn remember_strings(&mut self) {
        self.recent.get_or_insert_with(Recent::default);
    }

    /// Current size of the dynamic table in bytes (name + value + 32 per entry).
    pub fn table_size(&self) -> usize {
        self.table.size()
    }

    /// Current maximum size of the dynamic table in bytes: the last size
    /// update the peer sent, at first the `max_table_size` given to [`Decoder::new`].
    pub fn table_max_size(&self) -> usize {
        self.table.max()
    }

    /// Decodes one complete field block (HEADERS + CONTINUATION payloads joined),
    /// calling `field(name, value, never_indexed)` for each field in order. Names
    /// are passed as sent (lowercase checks are the caller's). `max_list` bounds the
    /// decoded list size (sum of name.len() + value.len() + 32 per field, RFC 9113
    /// §6.5.2): once exceeded, `field` is no longer called (not for the field that
    /// exceeds it either) but the rest of the block is still decoded (the dynamic
    /// table must stay in step) and the result is `Err(HpackError::TooLarge)` — a
    /// stream error for the caller; every other error is a connection error
    /// (COMPRESSION_ERROR) and takes precedence.
    pub fn decode(
        &mut self,
        block: &[u8],
        max_list: usize,
        mut field: impl FnMut(&[u8], &[u8], bool),
    ) -> Result<(), HpackError> {
        let mut list: usize = 0;
        let mut too_large = false;
        let mut deliver = |name: &[u8], value: &[u8], never_indexed: bool| {
            if too_large {
                return;
            }
            list = list
                .saturating_add(name.len())
                .saturating_add(value.len())
                .saturating_add(ENTRY_OVERHEAD);
            if list > max_list {
                too_large = true;
            } else {
                field(name, value, never_indexed);
            }
        };

        let mut cur = Cursor { rest: block };
        let mut fields_seen = false;
        let mut size_updates = 0;
        while let Some(&first) = cur.rest.first() {
            if first & 0x80 != 0 {
                // Indexed field (§6.1).
                let index = cur.int(7)?;
                let (name, value) = self.table.get(index).ok_or(HpackError::BadIndex(index))?;
                fields_seen = true;
                deliver(name, value, false);
                continue;
            }
            if first & 0xe0 == 0x20 {
                // Dynamic table size update (§6.3), only before the first field.
                if fields_seen {
                    return Err(HpackError::SizeUpdateNotFirst);
                }
                size_updates += 1;
                if size_updates > 2 {
                    return Err(HpackError::TooManySizeUpdates);
                }
                let size = cur.int(5)?;
                let size = usize::try_from(size)
                    .ok()
                    .filter(|&s| s <= self.max_allowed)
                    .ok_or(HpackError::SizeUpdateTooLarge)?;
                self.table.set_max(size);
                continue;
            }
            // Literals: with incremental indexing (§6.2.1, 01 + 6-bit index),
            // without indexing (§6.2.2, 0000 + 4 bits), never indexed (§6.2.3, 0001 + 4 bits).
            fields_seen = true;
            let indexing = first & 0x40 != 0;
            let never_indexed = !indexing && first & 0x10 != 0;
            let index = cur.int(if indexing { 6 } else { 4 })?;
            self.scratch.clear();
            let name = if index == 0 {
                Some(cur.string(&mut self.scratch, self.recent.as_mut())?)
            } else {
                None
            };
            let value = cur.string(&mut self.scratch, self.recent.as_mut())?;
            let value = value.bytes(&self.scratch);
            match &name {
                Some(s) => deliver(s.bytes(&self.scratch), value, never_indexed),
                None => {
                    let (n, _) = self.table.get(index).ok_or(HpackError::BadIndex(index))?;
                    deliver(n, value, never_indexed)
                }
            }
            if indexing {
                let name = match &name {
                    Some(s) => Name::Literal(s.bytes(&self.scratch)),
                    None => Name::Index(index),
                };
                self.table.push(name, value);
            }
        }
        if too_large {
            Err(HpackError::TooLarge)
        } else {
            Ok(())
        }
    }
}

/// A string literal just read: raw bytes of the block, or a range of the scratch buffer.
enum Str<'a> {
    Raw(&'a [u8]),
    Huffman(usize, usize),
}

impl<'a> Str<'a> {
    fn bytes<'s>(&self, scratch: &'s [u8]) -> &'s [u8]
    where
        'a: 's,
    {
        match *self {
            Str::Raw(s) => s,
            Str::Huffman(start, end) => scratch.get(start..end).unwrap_or_default(),
        }
    }
}

/// What is left of the block.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    /// An integer with an N-bit prefix (§5.1), `prefix` in 1..=8; the bits
    /// above the prefix in the first byte are the caller's.
    fn int(&mut self, prefix: u32) -> Result<u64, HpackError> {
        let (&first, mut rest) = self.rest.split_first().ok_or(HpackError::Truncated)?;
        let mask = u64::from(u8::MAX >> (8 - prefix.clamp(1, 8)));
        let mut value = u64::from(first) & mask;
        if value == mask {
            let mut shift = 0;
            loop {
                let (&b, r) = rest.split_first().ok_or(HpackError::Truncated)?;
                rest = r;
                if shift >= 7 * MAX_INT_CONTINUATIONS {
                    return Err(HpackError::IntegerOverflow);
                }
                value += u64::from(b & 0x7f) << shift;
                if b & 0x80 == 0 {
                    break;
                }
                shift += 7;
            }
            if value > u64::from(u32::MAX) {
                return Err(HpackError::IntegerOverflow);
            }
        }
        self.rest = rest;
        Ok(value)
    }

    /// A string literal (§5.2): H bit, 7-bit-prefix length, the bytes;
    /// Huffman-coded ones are decoded onto the end of `scratch` (through
    /// `recent` when given).
    fn string(
        &mut self,
        scratch: &mut Vec<u8>,
        recent: Option<&mut Recent>,
    ) -> Result<Str<'a>, HpackError> {
        let huffman = self.rest.first().ok_or(HpackError::Truncated)? & 0x80 != 0;
        let len = self.int(7)?;
        let len = usize::try_from(len).map_err(|_| HpackError::Truncated)?;
        let (s, rest) = self
            .rest
            .split_at_checked(len)
            .ok_or(HpackError::Truncated)?;
        self.rest = rest;
        if huffman {
            let start = scratch.len();
            match recent {
                Some(r) => r.decode(s, scratch)?,
                None => huffman::decode(s, scratch)?,
            }
            Ok(Str::Huffman(start, scratch.len()))
        } else {
            Ok(Str::Raw(s))
        }
    }
}

//! The static table (RFC 7541 Appendix A) and the dynamic table (§2.3.2, §4).
//!
//! Index space (§2.3.3): 1..=61 is the static table, 62 and up the dynamic
//! table, newest entry first. Index 0 is never valid.

use std::collections::VecDeque;

/// Entries of the static table (§2.3.1, Appendix A); index `i` is `STATIC[i - 1]`.
pub(super) const STATIC: [(&[u8], &[u8]); 61] = [
    (b":authority", b""),
    (b":method", b"GET"),
    (b":method", b"POST"),
    (b":path", b"/"),
    (b":path", b"/index.html"),
    (b":scheme", b"http"),
    (b":scheme", b"https"),
    (b":status", b"200"),
    (b":status", b"204"),
    (b":status", b"206"),
    (b":status", b"304"),
    (b":status", b"400"),
    (b":status", b"404"),
    (b":status", b"500"),
    (b"accept-charset", b""),
    (b"accept-encoding", b"gzip, deflate"),
    (b"accept-language", b""),
    (b"accept-ranges", b""),
    (b"accept", b""),
    (b"access-control-allow-origin", b""),
    (b"age", b""),
    (b"allow", b""),
    (b"authorization", b""),
    (b"cache-control", b""),
    (b"content-disposition", b""),
    (b"content-encoding", b""),
    (b"content-language", b""),
    (b"content-length", b""),
    (b"content-location", b""),
    (b"content-range", b""),
    (b"content-type", b""),
    (b"cookie", b""),
    (b"date", b""),
    (b"etag", b""),
    (b"expect", b""),
    (b"expires", b""),
    (b"from", b""),
    (b"host", b""),
    (b"if-match", b""),
    (b"if-modified-since", b""),
    (b"if-none-match", b""),
    (b"if-range", b""),
    (b"if-unmodified-since", b""),
    (b"last-modified", b""),
    (b"link", b""),
    (b"location", b""),
    (b"max-forwards", b""),
    (b"proxy-authenticate", b""),
    (b"proxy-authorization", b""),
    (b"range", b""),
    (b"referer", b""),
    (b"refresh", b""),
    (b"retry-after", b""),
    (b"server", b""),
    (b"set-cookie", b""),
    (b"strict-transport-security", b""),
    (b"transfer-encoding", b""),
    (b"user-agent", b""),
    (b"vary", b""),
    (b"via", b""),
    (b"www-authenticate", b""),
];

/// Number of static entries; the first dynamic index is `STATIC_LEN + 1`.
pub(super) const STATIC_LEN: usize = STATIC.len();

/// Per-entry overhead counted in an entry's size (§4.1), in bytes.
pub(super) const ENTRY_OVERHEAD: usize = 32;

/// The lowest static index whose name is `name` (exact bytes, so lowercase).
pub(super) fn static_name_index(name: &[u8]) -> Option<usize> {
    Some(match name {
        b":authority" => 1,
        b":method" => 2,
        b":path" => 4,
        b":scheme" => 6,
        b":status" => 8,
        b"accept-charset" => 15,
        b"accept-encoding" => 16,
        b"accept-language" => 17,
        b"accept-ranges" => 18,
        b"accept" => 19,
        b"access-control-allow-origin" => 20,
        b"age" => 21,
        b"allow" => 22,
        b"authorization" => 23,
        b"cache-control" => 24,
        b"content-disposition" => 25,
        b"content-encoding" => 26,
        b"content-language" => 27,
        b"content-length" => 28,
        b"content-location" => 29,
        b"content-range" => 30,
        b"content-type" => 31,
        b"cookie" => 32,
        b"date" => 33,
        b"etag" => 34,
        b"expect" => 35,
        b"expires" => 36,
        b"from" => 37,
        b"host" => 38,
        b"if-match" => 39,
        b"if-modified-since" => 40,
        b"if-none-match" => 41,
        b"if-range" => 42,
        b"if-unmodified-since" => 43,
        b"last-modified" => 44,
        b"link" => 45,
        b"location" => 46,
        b"max-forwards" => 47,
        b"proxy-authenticate" => 48,
        b"proxy-authorization" => 49,
        b"range" => 50,
        b"referer" => 51,
        b"refresh" => 52,
        b"retry-after" => 53,
        b"server" => 54,
        b"set-cookie" => 55,
        b"strict-transport-security" => 56,
        b"transfer-encoding" => 57,
        b"user-agent" => 58,
        b"vary" => 59,
        b"via" => 60,
        b"www-authenticate" => 61,
        _ => return None,
    })
}

/// Looks `name` up in the static table: `(name index, full index)`, the full
/// index when an entry also has `value` (e.g. `:method GET` → 2, `accept ""` → 19).
pub(super) fn static_lookup(name: &[u8], value: &[u8]) -> Option<(usize, Option<usize>)> {
    let first = static_name_index(name)?;
    let full = STATIC
        .iter()
        .enumerate()
        .skip(first - 1)
        .take_while(|(_, (n, _))| *n == name)
        .find(|(_, (_, v))| *v == value)
        .map(|(i, _)| i + 1);
    Some((first, full))
}

/// One dynamic-table entry: where its name and value are in the table's arena.
#[derive(Debug, Clone, Copy)]
struct Entry {
    at: usize,
    name_len: usize,
    value_len: usize,
}

impl Entry {
    /// Size as counted against the table (§4.1): name + value + 32 bytes.
    fn size(&self) -> usize {
        self.name_len + self.value_len + ENTRY_OVERHEAD
    }
}

/// The name of an entry being added: its bytes, or the index of a field
/// whose name it takes (static or dynamic, §6.2.1).
#[derive(Debug, Clone, Copy)]
pub(super) enum Name<'a> {
    Literal(&'a [u8]),
    Index(u64),
}

/// Dead arena bytes (of evicted entries) at which the live ones are moved to
/// the front: the table's maximum size, at least this (1 KiB). Each move
/// copies at most as many bytes as were added since the last one.
const MIN_COMPACT: usize = 1024;

/// The dynamic table (§2.3.2): newest entry at the front, `size` the sum of
/// the entries' sizes (§4.1), never above `max` (bytes). Names and values
/// live in one arena, appended in insertion order: evicting the oldest
/// entries leaves a dead prefix, dropped now and then by moving the live
/// suffix down, so a warm table allocates nothing.
#[derive(Debug, Clone, Default)]
pub(super) struct DynTable {
    entries: VecDeque<Entry>,
    arena: Vec<u8>,
    size: usize,
    max: usize,
}

impl DynTable {
    /// An empty table of at most `max` bytes.
    pub(super) fn new(max: usize) -> DynTable {
        DynTable {
            entries: VecDeque::new(),
            arena: Vec::new(),
            size: 0,
            max,
        }
    }

    fn field(&self, e: &Entry) -> (&[u8], &[u8]) {
        let name = self.arena.get(e.at..e.at + e.name_len).unwrap_or_default();
        let end = e.at + e.name_len + e.value_len;
        let value = self.arena.get(e.at + e.name_len..end).unwrap_or_default();
        (name, value)
    }

    /// Current size in bytes (§4.1).
    pub(super) fn size(&self) -> usize {
        self.size
    }

    /// Current maximum size in bytes (the last size update, §4.2).
    pub(super) fn max(&self) -> usize {
        self.max
    }

    /// Number of entries.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entries, newest first (for the tests and the indexing encoder).
    pub(super) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.entries.iter().map(|e| self.field(e))
    }

    /// The field at `index` in the combined index space (§2.3.3): static
    /// 1..=61, then dynamic. `None` for 0 and past the end.
    pub(super) fn get(&self, index: u64) -> Option<(&[u8], &[u8])> {
        let i = usize::try_from(index).ok()?.checked_sub(1)?;
        match STATIC.get(i) {
            Some(&(n, v)) => Some((n, v)),
            None => self
                .entries
                .get(i.checked_sub(STATIC_LEN)?)
                .map(|e| self.field(e)),
        }
    }

    /// A new maximum size (§4.3): entries are evicted until it holds.
    pub(super) fn set_max(&mut self, max: usize) {
        self.max = max;
        self.evict_to(max);
        self.compact();
    }

    /// Adds an entry (§4.4): older entries are evicted to make room; an entry
    /// larger than the maximum empties the table and is not added. `None`
    /// when `name` is an index past the tables (nothing changes then).
    pub(super) fn push(&mut self, name: Name<'_>, value: &[u8]) -> Option<()> {
        // Copied first: the name may be an entry this insertion evicts.
        let at = self.arena.len();
        match name {
            Name::Literal(n) => self.arena.extend_from_slice(n),
            Name::Index(index) => {
                let i = usize::try_from(index).ok()?.checked_sub(1)?;
                match STATIC.get(i) {
                    Some(&(n, _)) => self.arena.extend_from_slice(n),
                    None => {
                        let e = *self.entries.get(i.checked_sub(STATIC_LEN)?)?;
                        let name = e.at..e.at + e.name_len;
                        if name.end > at {
                            return None;
                        }
                        self.arena.extend_from_within(name);
                    }
                }
            }
        }
        let name_len = self.arena.len() - at;
        self.arena.extend_from_slice(value);
        let entry = Entry {
            at,
            name_len,
            value_len: value.len(),
        };
        let size = entry.size();
        if size > self.max {
            self.entries.clear();
            self.arena.clear();
            self.size = 0;
            return Some(());
        }
        self.evict_to(self.max - size);
        self.size += size;
        self.entries.push_front(entry);
        self.compact();
        Some(())
    }

    /// Evicts the oldest entries until the size is at most `limit`.
    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_back() {
                Some(e) => self.size = self.size.saturating_sub(e.size()),
                None => {
                    self.size = 0;
                    break;
                }
            }
        }
    }

    /// Moves the live bytes to the front of the arena once the dead prefix
    /// is large enough.
    fn compact(&mut self) {
        if self.entries.is_empty() {
            self.arena.clear();
            return;
        }
        let live_from = self.entries.back().map_or(0, |e| e.at);
        if live_from < self.max.max(MIN_COMPACT) {
            return;
        }
        self.arena.drain(..live_from);
        for e in self.entries.iter_mut() {
            e.at -= live_from;
        }
    }
}

//! HPACK, header compression for HTTP/2 (RFC 7541): pure code, no I/O.
//!
//! - [`Decoder`]: decodes the field blocks a peer sends (HEADERS plus
//!   CONTINUATION payloads, joined), keeping the dynamic table in step with the
//!   peer's encoder. Every byte may be hostile: errors, never panics; the
//!   decoded fields are handed out as borrowed slices (of the block, of the
//!   dynamic table, or of one scratch buffer for Huffman-coded strings), so a
//!   warm decoder allocates only for the entries it inserts.
//! - [`encode_field`], [`encode_status`]: stateless encoding, as HAProxy does:
//!   static-table indices, raw literals, never the dynamic table (so the
//!   peer's `SETTINGS_HEADER_TABLE_SIZE` never matters).
//! - [`huffman`]: the Huffman code of §5.2 / Appendix B.
//! - [`IndexingEncoder`]: for tests and fuzzing, an encoder that does use the
//!   dynamic table, size updates and Huffman, to exercise every decoder path.
//!
//! Sizes are in bytes throughout: an entry counts name + value + 32 (§4.1).

mod decode;
mod encode;
pub mod huffman;
mod recent;
mod table;
#[cfg(test)]
mod tests;

pub use decode::Decoder;
pub use encode::{encode_field, encode_status, IndexingEncoder};

/// The default `SETTINGS_HEADER_TABLE_SIZE` (RFC 9113 §6.5.2): 4096 bytes.
pub const DEFAULT_TABLE_SIZE: usize = 4096;

/// Why a field block could not be decoded. All but [`HpackError::TooLarge`]
/// are connection errors (COMPRESSION_ERROR, RFC 9113 §4.3): the dynamic
/// table can no longer be trusted to be in step with the peer's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HpackError {
    /// The block ends inside a representation, an integer or a string.
    Truncated,
    /// An index that is 0 or past the static and dynamic tables.
    BadIndex(u64),
    /// An integer (§5.1) above `u32::MAX` or with more than 5 continuation bytes.
    IntegerOverflow,
    /// A Huffman string holding EOS, or padded with more than 7 bits or with
    /// bits that are not all ones (§5.2).
    BadHuffman,
    /// A dynamic table size update above the size we advertised (§6.3).
    SizeUpdateTooLarge,
    /// A dynamic table size update after the first field of the block (§4.2).
    SizeUpdateNotFirst,
    /// More than two size updates at the start of a block (§4.2 allows the
    /// smallest and the final size).
    TooManySizeUpdates,
    /// The decoded field list exceeds the caller's `max_list` (RFC 9113
    /// §6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE): the block was still decoded to
    /// its end, the table is in step; a stream error for the caller.
    TooLarge,
}

impl HpackError {
    /// Whether this is [`HpackError::TooLarge`]: the only error that leaves
    /// the decoder usable (a stream error, not a connection error).
    pub fn list_too_large(&self) -> bool {
        matches!(self, HpackError::TooLarge)
    }
}

impl std::fmt::Display for HpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HpackError::Truncated => f.write_str("hpack: field block truncated"),
            HpackError::BadIndex(i) => write!(f, "hpack: invalid table index {i}"),
            HpackError::IntegerOverflow => f.write_str("hpack: integer too large"),
            HpackError::BadHuffman => f.write_str("hpack: invalid huffman string"),
            HpackError::SizeUpdateTooLarge => {
                f.write_str("hpack: table size update above the advertised size")
            }
            HpackError::SizeUpdateNotFirst => f.write_str("hpack: table size update after a field"),
            HpackError::TooManySizeUpdates => {
                f.write_str("hpack: more than two table size updates")
            }
            HpackError::TooLarge => f.write_str("hpack: header list too large"),
        }
    }
}

impl std::error::Error for HpackError {}

//! The response body decoder of the native HTTP/1.1 client: a small state
//! machine over the bytes read so far, with no I/O (the body in
//! [`super::body`] reads; this cuts). Data is handed on as slices of the read
//! buffer, as soon as it arrives (a chunk is not waited for in full).
//!
//! Chunked bodies: the size line is parsed with `httparse` and bounded
//! ([`MAX_SIZE_LINE`], extensions included); the framing lines end in CRLF
//! (a bare LF in chunk framing is refused: lenient line ends are how
//! request smuggling between two parsers starts); trailers are parsed as
//! fields and handed on as a trailers frame.

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::HeaderMap;

use super::head::{Framing, MAX_HEADERS};

/// Longest chunk-size line, extensions included: 4 KiB.
pub const MAX_SIZE_LINE: usize = 4096;
/// Largest trailer section: 64 KiB.
pub const MAX_TRAILERS: usize = 64 * 1024;

/// Why a body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The backend closed before the body's end.
    Incomplete,
    /// A chunk-size line that does not parse, or over [`MAX_SIZE_LINE`].
    ChunkSize,
    /// No CRLF after a chunk's data.
    ChunkEnd,
    /// Trailers that do not parse, or over [`MAX_TRAILERS`].
    Trailers,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecodeError::Incomplete => "the backend closed the connection before the body's end",
            DecodeError::ChunkSize => "invalid chunk size line in the response body",
            DecodeError::ChunkEnd => "no line end after a chunk of the response body",
            DecodeError::Trailers => "invalid trailers in the response body",
        })
    }
}

/// One step of decoding.
#[derive(Debug, PartialEq)]
pub enum Step {
    Data(Bytes),
    Trailers(HeaderMap),
    /// More bytes are needed.
    More,
    /// The body is over; what is left in the buffer is not its.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Length(u64),
    Close,
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk: bytes left.
    Data(u64),
    /// After a chunk's data: its CRLF.
    DataEnd,
    /// After the last chunk: trailers or the empty line.
    Trailers,
    Done,
}

/// Decodes one body.
#[derive(Debug, Clone, Copy)]
pub struct Decoder {
    state: State,
}

impl Decoder {
    pub fn new(framing: Framing) -> Decoder {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Size,
            Framing::Close => State::Close,
        };
        Decoder { state }
    }

    /// Whether the body is over.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The exact bytes left, when the framing tells.
    pub fn exact_left(&self) -> Option<u64> {
        match self.state {
            State::Length(n) => Some(n),
            State::Done => Some(0),
            _ => None,
        }
    }

    /// The next step from `buf` (taking what it hands on off it); `eof`:
    /// the backend has closed and `buf` holds all that will come.
    pub fn step(&mut self, buf: &mut BytesMut, eof: bool) -> Result<Step, DecodeError> {
        loop {
            match self.state {
                State::Done => return Ok(Step::End),
                State::Length(left) | State::Data(left) => {
                    if buf.is_empty() {
                        return if eof {
                            Err(DecodeError::Incomplete)
                        } else {
                            Ok(Step::More)
                        };
                    }
                    // At most `buf.len()`, so it fits a usize.
                    let n = (buf.len() as u64).min(left) as usize;
                    let rest = left - n as u64;
                    self.state = match (self.state, rest) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), r) => State::Length(r),
                        (_, 0) => State::DataEnd,
                        (_, r) => State::Data(r),
                    };
                    return Ok(Step::Data(buf.split_to(n).freeze()));
                }
                State::Close => {
                    if !buf.is_empty() {
                        return Ok(Step::Data(buf.split().freeze()));
                    }
                    if eof {
                        self.state = State::Done;
                        return Ok(Step::End);
                    }
                    return Ok(Step::More);
                }
                State::Size => match httparse::parse_chunk_size(buf) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        if used > MAX_SIZE_LINE {
                            return Err(DecodeError::ChunkSize);
                        }
                        let _ = buf.split_to(used);
                        self.state = if size == 0 {
                            State::Trailers
                        } else {
                            State::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => {
                        return more(buf, eof, MAX_SIZE_LINE, DecodeError::ChunkSize)
                    }
                    Err(_) => return Err(DecodeError::ChunkSize),
                },
                State::DataEnd => match crlf(buf, eof, DecodeError::ChunkEnd)? {
                    None => return Ok(Step::More),
                    Some(()) => self.state = State::Size,
                },
                State::Trailers => return self.trailers(buf, eof),
            }
        }
    }

    /// After the last chunk: the empty line, or trailer fields and the empty line.
    fn trailers(&mut self, buf: &mut BytesMut, eof: bool) -> Result<Step, DecodeError> {
        if buf.first() == Some(&b'\n') {
            return Err(DecodeError::Trailers);
        }
        if buf.first() == Some(&b'\r') || buf.is_empty() {
            return match crlf(buf, eof, DecodeError::Trailers)? {
                None => Ok(Step::More),
                Some(()) => {
                    self.state = State::Done;
                    Ok(Step::End)
                }
            };
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        match httparse::parse_headers(buf, &mut fields) {
            Ok(httparse::Status::Complete((used, fields))) => {
                // The section must end in CRLF CRLF (no bare LF at the end of a message).
                if used > MAX_TRAILERS || buf.get(used.saturating_sub(4)..used) != Some(b"\r\n\r\n")
                {
                    return Err(DecodeError::Trailers);
                }
                let mut map = HeaderMap::with_capacity(fields.len());
                for f in fields {
                    let name = HeaderName::from_bytes(f.name.as_bytes())
                        .map_err(|_| DecodeError::Trailers)?;
                    let value =
                        HeaderValue::from_bytes(f.value).map_err(|_| DecodeError::Trailers)?;
                    map.append(name, value);
                }
                let _ = buf.split_to(used);
                self.state = State::Done;
                Ok(Step::Trailers(map))
            }
            Ok(httparse::Status::Partial) => more(buf, eof, MAX_TRAILERS, DecodeError::Trailers),
            Err(_) => Err(DecodeError::Trailers),
        }
    }
}

/// Takes a CRLF off the start of `buf`: `Some` when it was there, `None`
/// when more bytes are needed, `bad` when something else is there.
fn crlf(buf: &mut BytesMut, eof: bool, bad: DecodeError) -> Result<Option<()>, DecodeError> {
    match buf.get(..2) {
        Some(b"\r\n") => {
            let _ = buf.split_to(2);
            Ok(Some(()))
        }
        Some(_) => Err(bad),
        None if buf.first().is_some_and(|&b| b != b'\r') => Err(bad),
        None if eof => Err(DecodeError::Incomplete),
        None => Ok(None),
    }
}

/// `More`, unless the backend has closed (`Incomplete`) or `buf` already
/// holds `max` bytes without completing the element (`over`).
fn more(buf: &BytesMut, eof: bool, max: usize, over: DecodeError) -> Result<Step, DecodeError> {
    if eof {
        Err(DecodeError::Incomplete)
    } else if buf.len() >= max {
        Err(over)
    } else {
        Ok(Step::More)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Data, trailers, and what was left after the end.
    type Decoded = (Vec<u8>, Option<HeaderMap>, Vec<u8>);

    /// Feeds `wire` in pieces of `piece` bytes; the data, the trailers, and
    /// what was left after the end (or the error).
    pub(crate) fn decode_all(
        framing: Framing,
        wire: &[u8],
        piece: usize,
    ) -> Result<Decoded, DecodeError> {
        let mut d = Decoder::new(framing);
        let mut buf = BytesMut::new();
        let mut fed = 0;
        let mut data = Vec::new();
        let mut trailers = None;
        loop {
            let eof = fed >= wire.len();
            match d.step(&mut buf, eof)? {
                Step::Data(b) => {
                    assert!(!b.is_empty());
                    data.extend_from_slice(&b)
                }
                Step::Trailers(t) => trailers = Some(t),
                Step::End => {
                    let mut rest = buf.to_vec();
                    rest.extend_from_slice(&wire[fed..]);
                    return Ok((data, trailers, rest));
                }
                Step::More => {
                    let end = (fed + piece.max(1)).min(wire.len());
                    buf.extend_from_slice(&wire[fed..end]);
                    fed = end;
                }
            }
        }
    }

    #[test]
    fn chunked_bodies_with_extensions_and_trailers() {
        let wire = b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nGrpc-Status: 0\r\n\r\nNEXT";
        for piece in [1, 2, 3, 7, 100] {
            let (data, trailers, rest) = decode_all(Framing::Chunked, wire, piece).unwrap();
            assert_eq!(data, b"hello world");
            assert_eq!(trailers.unwrap().get("grpc-status").unwrap(), "0");
            assert_eq!(rest, b"NEXT");
        }
        let (data, t, rest) = decode_all(Framing::Chunked, b"3\r\nabc\r\n0\r\n\r\n", 1).unwrap();
        assert_eq!(
            (data.as_slice(), t, rest.as_slice()),
            (&b"abc"[..], None, &b""[..])
        );
        for bare_lf in [
            &b"3\nabc\r\n0\r\n\r\n"[..],
            b"3\r\nabc\n0\r\n\r\n",
            b"3\r\nabc\r\n0\r\n\n",
            b"3\r\nabc\r\n0\r\nX: 1\n\n",
        ] {
            assert!(decode_all(Framing::Chunked, bare_lf, 1).is_err());
        }
    }

    #[test]
    fn broken_bodies_fail() {
        let cases: &[(Framing, &[u8], DecodeError)] = &[
            (Framing::Length(10), b"short", DecodeError::Incomplete),
            (Framing::Chunked, b"5\r\nhello\r\n", DecodeError::Incomplete),
            (
                Framing::Chunked,
                b"5\r\nhelloX\r\n0\r\n\r\n",
                DecodeError::ChunkEnd,
            ),
            (Framing::Chunked, b"zz\r\n", DecodeError::ChunkSize),
            (
                Framing::Chunked,
                b"ffffffffffffffffff\r\n",
                DecodeError::ChunkSize,
            ),
            (
                Framing::Chunked,
                b"0\r\nbad header\r\n\r\n",
                DecodeError::Trailers,
            ),
        ];
        for (framing, wire, want) in cases {
            assert_eq!(
                decode_all(*framing, wire, 3).unwrap_err(),
                *want,
                "{:?}",
                String::from_utf8_lossy(wire)
            );
        }
        let mut line = b"1;".to_vec();
        line.extend(std::iter::repeat_n(b'a', MAX_SIZE_LINE));
        assert_eq!(
            decode_all(Framing::Chunked, &line, 512).unwrap_err(),
            DecodeError::ChunkSize
        );
    }

    #[test]
    fn length_and_close_bodies() {
        let (data, _, rest) = decode_all(Framing::Length(5), b"helloNEXT", 2).unwrap();
        assert_eq!(
            (data.as_slice(), rest.as_slice()),
            (&b"hello"[..], &b"NEXT"[..])
        );
        let (data, _, _) = decode_all(Framing::Close, b"to the end", 4).unwrap();
        assert_eq!(data, b"to the end");
        let (data, _, rest) = decode_all(Framing::Empty, b"x", 4).unwrap();
        assert_eq!((data.len(), rest.as_slice()), (0, &b"x"[..]));
    }

    fn chunked(parts: &[Vec<u8>]) -> Vec<u8> {
        let mut w = Vec::new();
        for p in parts.iter().filter(|p| !p.is_empty()) {
            w.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
            w.extend_from_slice(p);
            w.extend_from_slice(b"\r\n");
        }
        w.extend_from_slice(b"0\r\n\r\n");
        w
    }

    proptest! {
        /// Any body, chunked any way and fed in any pieces, decodes to itself,
        /// and what follows it is left untouched.
        #[test]
        fn chunked_round_trip(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..8),
            piece in 1usize..40,
            next in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let mut wire = chunked(&parts);
            wire.extend_from_slice(&next);
            let (data, _, rest) = decode_all(Framing::Chunked, &wire, piece).unwrap();
            prop_assert_eq!(data, parts.concat());
            prop_assert_eq!(rest, next);
        }

        /// Arbitrary bytes never panic the decoder, and never produce more
        /// data than they hold.
        #[test]
        fn arbitrary_bytes_are_safe(
            wire in proptest::collection::vec(any::<u8>(), 0..256),
            piece in 1usize..40,
            len in 0u64..300,
        ) {
            for framing in [Framing::Chunked, Framing::Length(len), Framing::Close] {
                if let Ok((data, _, _)) = decode_all(framing, &wire, piece) {
                    prop_assert!(data.len() <= wire.len());
                }
            }
        }
    }
}

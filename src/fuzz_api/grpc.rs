//! The gRPC parsers of input from the network: `grpc-timeout` (request
//! header) and the health check response (from a member).

use std::time::Duration;

use crate::health::grpc::{decode_message, decode_response, encode_request};
use crate::proxy::grpc::parse_timeout;

/// Feeds `data` to the gRPC parsers. Invariants: nothing panics; a parsed
/// `grpc-timeout` is 2 to 9 bytes, at most 99,999,999 hours, and the same value
/// read back from its digits; a decoded health response is at least a frame
/// head long; a request drover encodes decodes as a well-formed frame.
pub fn grpc(data: &[u8]) {
    if let Some(d) = parse_timeout(data) {
        assert!((2..=9).contains(&data.len()), "{data:?}");
        assert!(d <= Duration::from_secs(99_999_999 * 3600));
        let digits = data.get(..data.len() - 1).unwrap_or_default();
        assert!(digits.iter().all(u8::is_ascii_digit), "{data:?}");
    }
    if decode_response(data).is_ok() {
        assert!(data.len() >= 5);
    }
    let _ = decode_message(data);
    let service = String::from_utf8_lossy(data);
    let req = encode_request(&service);
    let len = req
        .get(1..5)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes);
    assert_eq!(len, Some((req.len() - 5) as u32));
}

//! The duration and size parsers, and the gRPC parsers (`grpc-timeout`,
//! the health check response).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        drover::fuzz_api::duration(s);
    }
    drover::fuzz_api::grpc(data);
});

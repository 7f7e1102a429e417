//! The native HTTP/1 codec (proxy::h1): request heads, response heads, and a
//! whole client connection (pipelining, bodies, hand-off to hyper).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    drover::fuzz_api::h1_head(data);
    drover::fuzz_api::h1_connection(data);
});

//! The native HTTP/1.1 client (upstream::native): a backend's response head
//! and body, split into pieces, under any framing.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    drover::fuzz_api::upstream_response(data);
});

//! The HTTP/2 client (upstream::h2_client): any frames an h2 backend sends
//! back to one request.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    drover::fuzz_api::upstream_h2(data);
});

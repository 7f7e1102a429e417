//! Request-head handling: routing, strip_prefix, header rewrite, request id, access log.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(head) = drover::fuzz_api::parse_head(data) {
        drover::fuzz_api::request_head(&head);
    }
});

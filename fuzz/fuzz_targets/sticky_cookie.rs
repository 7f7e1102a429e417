//! The sticky-session cookie parser.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    drover::fuzz_api::sticky_cookie(data);
});

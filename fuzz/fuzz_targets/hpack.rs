//! The HPACK decoder (h2wire::hpack): hostile field blocks on one decoder,
//! and the encoders round-tripping what it decoded.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    drover::fuzz_api::hpack::hpack(data);
});

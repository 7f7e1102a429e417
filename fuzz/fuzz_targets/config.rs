//! The config reader and validator: TOML text -> Config or positioned errors.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(src) = std::str::from_utf8(data) {
        drover::fuzz_api::config(src);
    }
});

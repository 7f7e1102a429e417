//! The admin API's route table, path parameters and query parsing.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(head) = drover::fuzz_api::parse_head(data) {
        drover::fuzz_api::admin_request(&head);
    }
});

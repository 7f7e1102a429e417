//! Redirect targets and header-rule templates with a hostile Host, path and
//! query: input is `HOST\nTARGET\nTEMPLATE`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    drover::fuzz_api::route_rules(data);
});

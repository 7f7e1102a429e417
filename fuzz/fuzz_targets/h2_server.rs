//! drover's own HTTP/2 server (proxy::h2): whatever frames a client sends on
//! one connection, split in two writes.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    drover::fuzz_api::h2_server(data);
});

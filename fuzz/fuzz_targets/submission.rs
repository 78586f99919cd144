//! cargo fuzz harness: see `stockpile_fuzz::submission` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stockpile_fuzz::submission(data));

//! cargo fuzz harness: see `stockpile_fuzz::merkle` for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| stockpile_fuzz::merkle(data));

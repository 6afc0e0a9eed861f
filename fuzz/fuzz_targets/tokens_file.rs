//! Fuzz target: see `wsauth::fuzzing::tokens_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| wsauth::fuzzing::tokens_file(data));

//! Fuzz target: see `exercise::proxy_header`.
#![no_main]

#[path = "../exercise.rs"]
mod exercise;

libfuzzer_sys::fuzz_target!(|data: &[u8]| exercise::proxy_header(data));

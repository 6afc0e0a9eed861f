//! Fuzz target: see `exercise::tokens_file`.
#![no_main]

#[path = "../exercise.rs"]
mod exercise;

libfuzzer_sys::fuzz_target!(|data: &[u8]| exercise::tokens_file(data));

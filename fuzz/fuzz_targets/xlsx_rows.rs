#![no_main]
//! See fuzz/README.md. The entry is shared with the stable replay test.

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::run("xlsx_rows", data, outpost_files::import::fuzz_xlsx);
});

#![no_main]
//! See fuzz/README.md. The entry is shared with the stable replay test.

#[path = "common.rs"]
mod common;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    common::run("automerge_fixed", data, outpost_proto::fuzzing::automerge_fixed);
});

#![no_main]
//! See fuzz/README.md. The entry is shared with the stable replay test.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    outpost_proto::fuzzing::push_body(data);
});

//! `client::fuzzing::history_row`: see that function for what is checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    client::fuzzing::history_row(data);
});

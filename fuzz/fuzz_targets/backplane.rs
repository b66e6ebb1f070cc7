//! `relay::hub::fuzz_backplane`: what other relays send over NATS, as the
//! relay's backplane receiver handles it. See that function.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| relay::hub::fuzz_backplane(data));

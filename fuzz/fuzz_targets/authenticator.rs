//! See `fido2d_fuzz::authenticator` for the input layout and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fido2d_fuzz::authenticator::run(data));

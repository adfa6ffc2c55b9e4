//! See `fido2d_fuzz::ctap2_request` for the input layout and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fido2d_fuzz::ctap2_request::run(data));

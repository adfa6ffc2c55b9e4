//! See `fido2d_fuzz::credential_id` for the input layout and the invariants checked.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fido2d_fuzz::credential_id::run(data));

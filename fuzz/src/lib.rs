//! The fuzz targets of fido2d, as plain functions: `fuzz_targets/*.rs` hand libFuzzer's input
//! to them, and `tests/seeds.rs` replays the committed seeds and regression inputs through
//! them on a normal build. Each module documents its input layout and the invariants it checks
//! (a failed check is a panic, which libFuzzer reports as a crash).

pub mod authenticator;
pub mod client_pin;
#[cfg(test)]
mod committed_seeds;
pub mod credential_id;
pub mod ctap2_request;
pub mod ctaphid;
pub mod hybrid;
pub mod input;
pub mod storage_file;
pub mod verify;

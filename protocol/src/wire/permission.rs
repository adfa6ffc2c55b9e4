//! The pinUvAuthToken permissions (CTAP 2.1 §6.5.5.7, "permissions" of
//! getPinUvAuthTokenUsing{Pin,Uv}WithPermissions): one bit each, as a platform asks for them.

pub const MAKE_CREDENTIAL: u8 = 0x01;
pub const GET_ASSERTION: u8 = 0x02;
pub const CREDENTIAL_MANAGEMENT: u8 = 0x04;
/// "be": biometric enrollment.
pub const BIO_ENROLLMENT: u8 = 0x08;
pub const LARGE_BLOB_WRITE: u8 = 0x10;
pub const AUTHENTICATOR_CONFIG: u8 = 0x20;
/// persistentCredentialManagementReadOnly ("pcmr", CTAP 2.2 §6.5.5.7): granted alone, it
/// gives the persistentPinUvAuthToken, which reads credential management and nothing else.
pub const PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY: u8 = 0x40;

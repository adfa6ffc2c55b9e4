//! The public templates of the objects fido2d asks the TPM for (public for the benches,
//! which measure the bare TPM commands with the same objects).

use tss_esapi::attributes::{NvIndexAttributesBuilder, ObjectAttributesBuilder};
use tss_esapi::constants::NvIndexType;
use tss_esapi::handles::NvIndexTpmHandle;
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::structures::{
    EccPoint, EccScheme, HashScheme, KeyDerivationFunctionScheme, KeyedHashScheme, NvPublic,
    NvPublicBuilder, Public, PublicBuilder, PublicEccParametersBuilder, PublicKeyedHashParameters,
    SymmetricDefinitionObject,
};

/// The storage primary key: ECC P-256, restricted decryption, AES-128-CFB for its children.
/// The template is fixed and its unique field empty, so the owner seed gives the same key
/// each time it is recreated: nothing of it needs to be stored.
pub fn storage_primary() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_restricted(true)
        .with_decrypt(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new()
                .with_symmetric(SymmetricDefinitionObject::AES_128_CFB)
                .with_ecc_scheme(EccScheme::Null)
                .with_curve(EccCurve::NistP256)
                .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
                .with_is_decryption_key(true)
                .with_restricted(true)
                .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// A credential key: ECDSA-SHA256 on P-256, created by the TPM (sensitiveDataOrigin), bound
/// to this TPM and our storage key, used with its authValue (userWithAuth) and exempt from
/// dictionary-attack counting (noDA): its authValue is a 256-bit derived secret, not a
/// guessable password, and a wrong one must never lock other TPM users out.
pub fn credential_key() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_sensitive_data_origin(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .with_sign_encrypt(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Ecc)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_ecc_parameters(
            PublicEccParametersBuilder::new_unrestricted_signing_key(
                EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)),
                EccCurve::NistP256,
            )
            .build()?,
        )
        .with_ecc_unique_identifier(EccPoint::default())
        .build()
}

/// The sealed master secret: a keyed-hash object with no scheme that only holds data. No PCR
/// policy: binding to PCRs would lose every credential at a firmware or Secure Boot update.
pub fn sealed_secret() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_user_with_auth(true)
        .with_no_da(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Default::default())
        .build()
}

/// The PIN verifier: a sealed data object like [`sealed_secret`] but *without* `noDA`, so
/// that every authorization with a wrong PIN counts towards the TPM's dictionary-attack
/// lockout. Its authValue is derived from the PIN (see `crate::pin`).
pub fn pin_verifier() -> tss_esapi::Result<Public> {
    let attributes = ObjectAttributesBuilder::new()
        .with_fixed_tpm(true)
        .with_fixed_parent(true)
        .with_user_with_auth(true)
        .build()?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::KeyedHash)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
        .with_keyed_hash_unique_identifier(Default::default())
        .build()
}

/// A monotonic counter in the TPM's NV memory (TPM_NT_COUNTER, 8 bytes): read and incremented
/// with its own empty authorization (`authRead`, `authWrite`), exempt from dictionary-attack
/// counting. A counter only goes up, and a counter index defined anew starts above every value
/// a deleted counter of this TPM ever had.
pub fn nv_counter(handle: u32) -> tss_esapi::Result<NvPublic> {
    let attributes = NvIndexAttributesBuilder::new()
        .with_nv_index_type(NvIndexType::Counter)
        .with_auth_write(true)
        .with_auth_read(true)
        .with_no_da(true)
        .build()?;
    NvPublicBuilder::new()
        .with_nv_index(NvIndexTpmHandle::new(handle)?)
        .with_index_name_algorithm(HashingAlgorithm::Sha256)
        .with_index_attributes(attributes)
        .with_data_area_size(8)
        .build()
}

//! authenticatorLargeBlobs (CTAP 2.1 §6.10): the serialized large-blob array, read in slices
//! and replaced in fragments. The array's last 16 bytes are LEFT(SHA-256(the rest), 16); a
//! write is committed only when its last fragment arrived and that check holds, so a
//! half-written array never replaces the stored one.

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::ctap2::authenticator::Authenticator;
use crate::ctap2::pin::token::permission;
use crate::ctap2::state::continuation::{Continuation, LargeBlobWrite};
use crate::ctap2::state::Found;
use crate::env::{Env, Keystore, StateSlot};
use crate::status::StatusCode;
use crate::wire::{LargeBlobsRequest, LargeBlobsResponse};

/// getInfo maxSerializedLargeBlobArray (the spec asks for at least 1024).
pub const MAX_SERIALIZED_LARGE_BLOB_ARRAY: usize = 4096;
/// What a new or reset key holds: the empty CBOR array 0x80, then LEFT(SHA-256(0x80), 16).
pub const INITIAL_ARRAY: [u8; 17] = [
    0x80, 0x76, 0xbe, 0x8b, 0x52, 0x8d, 0x00, 0x75, 0xf7, 0xaa, 0xe9, 0x8d, 0x6f, 0xa5, 0x7a, 0x6d,
    0x3c,
];
const HASH_LEN: usize = 16;

/// The write a "set" fragment may continue.
enum Pending {
    Nothing,
    Own(LargeBlobWrite),
    /// Another channel's write (now cleared).
    Foreign,
}

impl<E: Env> Authenticator<E> {
    /// maxFragmentLength: maxMsgSize minus room for the CBOR around the fragment.
    fn max_fragment_length(&self) -> usize {
        self.config.max_msg_size.saturating_sub(64)
    }

    pub(crate) fn large_blobs(
        &mut self,
        request: LargeBlobsRequest,
    ) -> Result<LargeBlobsResponse, StatusCode> {
        let LargeBlobsRequest {
            get,
            set,
            offset,
            length,
            pin_uv_auth_param,
            pin_uv_auth_protocol: protocol,
        } = request;
        // A write in progress continues only with the next fragment from its own channel.
        let found = self.command.take_found();
        // 1-2. Exactly one of get and set; offset always (§6.10.2: "If offset is not present
        //      in the input map, return CTAP1_ERR_INVALID_PARAMETER").
        let offset = match (&get, &set) {
            (Some(_), Some(_)) | (None, None) => return Err(StatusCode::InvalidParameter),
            _ => offset.ok_or(StatusCode::InvalidParameter)?,
        };
        let offset = usize::try_from(offset).map_err(|_| StatusCode::InvalidParameter)?;
        if let Some(get) = get {
            // 3. Reading needs no token, and takes none of the write parameters.
            if length.is_some() || pin_uv_auth_param.is_some() || protocol.is_some() {
                return Err(StatusCode::InvalidParameter);
            }
            let get = usize::try_from(get).map_err(|_| StatusCode::InvalidLength)?;
            if get > self.max_fragment_length() {
                return Err(StatusCode::InvalidLength);
            }
            let array = self.large_blob_array()?;
            if offset > array.len() {
                return Err(StatusCode::InvalidParameter);
            }
            let end = offset.saturating_add(get).min(array.len());
            return Ok(LargeBlobsResponse {
                config: Some(array[offset..end].to_vec()),
            });
        }
        let fragment = set.expect("get or set, checked above");
        let pending = match found {
            Found::Own(Continuation::LargeBlobWrite(write)) => Pending::Own(write),
            Found::Foreign => Pending::Foreign,
            Found::Own(_) | Found::Nothing => Pending::Nothing,
        };
        self.write_fragment(
            fragment,
            offset,
            length,
            pending,
            pin_uv_auth_param,
            protocol,
        )
    }

    /// §6.10.3 "set" steps.
    fn write_fragment(
        &mut self,
        fragment: Vec<u8>,
        offset: usize,
        length: Option<i128>,
        pending: Pending,
        pin_uv_auth_param: Option<Vec<u8>>,
        protocol: Option<i128>,
    ) -> Result<LargeBlobsResponse, StatusCode> {
        // 1. No fragment longer than maxFragmentLength.
        if fragment.len() > self.max_fragment_length() {
            return Err(StatusCode::InvalidLength);
        }
        // 2-3. The first fragment announces the whole length ("If length is not present,
        //      return CTAP1_ERR_INVALID_PARAMETER"); the others do not.
        let (expected_length, mut buffer) = if offset == 0 {
            let length = length.ok_or(StatusCode::InvalidParameter)?;
            let length = usize::try_from(length).map_err(|_| StatusCode::InvalidParameter)?;
            if length > MAX_SERIALIZED_LARGE_BLOB_ARRAY {
                return Err(StatusCode::LargeBlobStorageFull);
            }
            if length < INITIAL_ARRAY.len() {
                return Err(StatusCode::InvalidParameter);
            }
            (length, Zeroizing::new(Vec::with_capacity(length)))
        } else {
            if length.is_some() {
                return Err(StatusCode::InvalidParameter);
            }
            // 4. Fragments come in order, on the channel that sent the first one: another
            //    channel's write is not this one's to continue.
            match pending {
                Pending::Own(write) if write.buffer.len() == offset => {
                    (write.expected_length, write.buffer)
                }
                Pending::Foreign => return Err(StatusCode::NotAllowed),
                Pending::Own(_) | Pending::Nothing => return Err(StatusCode::InvalidSeq),
            }
        };
        // 5. On a key with a PIN (or alwaysUv), a token with lbw over
        //    32×0xff || h'0c00' || uint32LE(offset) || SHA-256(fragment).
        if self.is_protected()? || self.state()?.always_uv {
            let message = LargeBlobsRequest::message_to_authenticate(
                offset as u32,
                &Sha256::digest(&fragment).into(),
            );
            self.authorize_management(
                pin_uv_auth_param,
                protocol,
                &message,
                permission::LARGE_BLOB_WRITE,
            )?;
        }
        // 6. Not past the announced length.
        if offset + fragment.len() > expected_length {
            return Err(StatusCode::InvalidParameter);
        }
        // 7-8. Gather.
        buffer.extend_from_slice(&fragment);
        if buffer.len() < expected_length {
            self.leave_continuation(Continuation::LargeBlobWrite(LargeBlobWrite {
                expected_length,
                buffer,
            }));
            return Ok(LargeBlobsResponse::default());
        }
        // 9. Complete: the trailing hash must match, then the array replaces the old one.
        let (array, hash) = buffer.split_at(buffer.len() - HASH_LEN);
        if Sha256::digest(array)[..HASH_LEN] != *hash {
            return Err(StatusCode::IntegrityFailure);
        }
        self.keystore.write_state(StateSlot::LargeBlobs, &buffer)?;
        Ok(LargeBlobsResponse::default())
    }

    /// The stored array, or the initial empty one.
    fn large_blob_array(&mut self) -> Result<Zeroizing<Vec<u8>>, StatusCode> {
        Ok(self
            .keystore
            .read_state(StateSlot::LargeBlobs)?
            .unwrap_or_else(|| Zeroizing::new(INITIAL_ARRAY.to_vec())))
    }
}

#[cfg(test)]
mod tests;

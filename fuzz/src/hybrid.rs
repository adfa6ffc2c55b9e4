//! Targets `hybrid_qr` and `hybrid_tunnel`: the caBLE v2 (hybrid) side of fido2d, which reads
//! what another computer shows (a QR code) and sends over the air (handshake, frames).

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use protocol::env::PresenceOutcome;
use protocol::hybrid::advert::Eid;
use protocol::hybrid::messages::{self, InitiatorFrame};
use protocol::hybrid::qr::QrRequest;
use protocol::hybrid::{digits, handshake, keys, tunnel_domain};
use protocol::testing::{ManualClock, MemoryKeystore, ScriptedPresence, SeededRng};
use protocol::wire::{Command, StatusCode};
use protocol::{Authenticator, AuthenticatorConfig};
use snow::params::NoiseParams;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use zeroize::Zeroizing;

use crate::input::Input;

/// The other computer, in a sign-in ("ga") session.
const PEER: protocol::Origin =
    protocol::Origin::hybrid(1, protocol::hybrid::qr::RequestType::GetAssertion);

/// `hybrid_qr`: the text of a QR code (selector 0) or the CBOR inside one (selector 1).
///
/// Invariants: the digit encoding is one-to-one (what decodes re-encodes to the same digits);
/// a code is accepted as text exactly when its CBOR is accepted (and it has not expired); the
/// derived keys and the tunnel domain never panic; `Debug` never shows the QR secret.
pub fn qr(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let now = 1_700_000_000;
    if selector & 1 == 0 {
        let text = String::from_utf8_lossy(rest);
        if let Ok(bytes) = digits::decode(&text) {
            assert_eq!(
                digits::encode(&bytes),
                text,
                "two digit strings for one byte string"
            );
        }
        if let Ok(request) = QrRequest::parse(&text, now, 600) {
            check_request(&request);
        }
    } else {
        let from_cbor = QrRequest::from_cbor(rest);
        let text = format!("FIDO:/{}", digits::encode(rest));
        let from_text = QrRequest::parse(&text, u64::MAX, u64::MAX);
        assert_eq!(
            from_cbor.is_ok(),
            from_text.is_ok(),
            "text and CBOR disagree"
        );
        if let Ok(request) = from_cbor {
            check_request(&request);
        }
    }
}

fn check_request(request: &QrRequest) {
    let secret = request.qr_secret();
    let _ = keys::eid_key(secret);
    let _ = keys::tunnel_id(secret);
    if let Ok(domain) = u16::try_from(request.known_domains) {
        let _ = tunnel_domain::domain_name(domain);
    }
    let debug = format!("{request:?}");
    assert!(
        !debug.contains(&format!("{secret:?}")),
        "Debug shows the QR secret"
    );
    assert!(!debug.contains(&hex(secret)), "Debug shows the QR secret");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const IDENTITY: [u8; 32] = [0x11; 32];
const QR_SECRET: [u8; 16] = [0x42; 16];

/// `hybrid_tunnel`: one session from the advert to the frames, fido2d being the phone.
///
/// Input: `mode | eid (16) | initiator ephemeral or message | responder ephemeral (32) | frame*`.
/// - mode bit 0: 1 = a real initiator (snow) makes message 1 from the ephemeral key given,
///   0 = the input's 81 bytes are message 1 as they are.
/// - each frame: `kind | u16 length | bytes`; kind bit 0: 1 = the initiator encrypts the
///   bytes as a padded plaintext (the padding included: the bytes are the whole plaintext),
///   0 = the bytes are a ciphertext as they are.
///
/// Invariants: an advert reads back as the EID it was made from; message 1 without the QR
/// secret never completes the handshake, a real one always does (for a valid ephemeral key),
/// and the initiator accepts the answer; frames not encrypted with the session key never
/// decrypt (and leave the session usable), those that are decrypt to exactly their content
/// minus the padding (the last byte counts the padding zeros); every CTAP
/// request is answered in a frame the initiator decrypts to `1 | answer`.
pub fn tunnel(data: &[u8]) {
    tunnel_answers(data);
}

/// [`tunnel`], returning how many CTAP requests were answered through the tunnel.
pub fn tunnel_answers(data: &[u8]) -> usize {
    let mut answered = 0;
    let mut input = Input::new(data);
    let mode = input.byte();
    let eid_bytes: [u8; 16] = input.array();
    let eid = Eid {
        nonce: eid_bytes[..10].try_into().unwrap(),
        routing_id: eid_bytes[10..13].try_into().unwrap(),
        tunnel_domain: u16::from_le_bytes([eid_bytes[13], eid_bytes[14]]) % 300,
    };
    let eid_key = keys::eid_key(&QR_SECRET);
    let advert = eid.encrypt(&eid_key);
    if tunnel_domain::domain_name(eid.tunnel_domain).is_ok() {
        assert_eq!(
            Eid::decrypt(&advert, &eid_key),
            Ok(eid),
            "advert round trip"
        );
    }
    let mut tampered = advert;
    tampered[usize::from(eid_bytes[15]) % tampered.len()] ^= 1 | eid_bytes[15];
    assert!(
        Eid::decrypt(&tampered, &eid_key).is_err(),
        "a tampered advert was read"
    );

    let psk = keys::psk(&QR_SECRET, &eid.to_bytes());
    let identity = p256::SecretKey::from_slice(&IDENTITY).expect("a valid scalar");
    let mut initiator = None;
    let message: Vec<u8> = if mode & 1 != 0 {
        let ephemeral: [u8; 32] = input.array();
        match snow_initiator(&psk, ephemeral) {
            Some((noise, message)) => {
                initiator = Some(noise);
                message
            }
            None => return answered,
        }
    } else {
        input.take(handshake::INITIATOR_MESSAGE_LEN).to_vec()
    };
    let responder_ephemeral = Zeroizing::new(input.array::<32>());
    let valid_ephemeral = p256::SecretKey::from_slice(responder_ephemeral.as_slice()).is_ok();
    let result = handshake::respond(&identity.public_key(), &psk, &message, responder_ephemeral);
    let Some(mut noise) = initiator else {
        assert!(
            result.is_err(),
            "a handshake without the QR secret completed"
        );
        return answered;
    };
    if !valid_ephemeral {
        assert!(result.is_err());
        return answered;
    }
    let done = result.expect("a real initiator's handshake completes");
    let mut payload = [0u8; 64];
    noise
        .read_message(&done.response, &mut payload)
        .expect("the initiator accepts our answer");
    let (to_responder, to_initiator) = noise.dangerously_get_raw_split();
    let mut them = InitiatorSide::new(&to_responder, &to_initiator);
    let mut us = done.crypter;

    let mut authenticator = Authenticator::new(
        AuthenticatorConfig::default(),
        MemoryKeystore::new(1),
        ScriptedPresence::always(PresenceOutcome::Approved),
        ManualClock::default(),
        SeededRng::new(2),
    );
    for _ in 0..16 {
        if input.is_empty() {
            break;
        }
        let kind = input.byte();
        let bytes = input.bytes();
        if kind & 1 == 0 {
            assert!(us.decrypt(bytes).is_err(), "a forged frame decrypted");
            continue;
        }
        let frame = us
            .decrypt(&them.encrypt(bytes))
            .ok()
            .map(|plain| plain.to_vec());
        assert_eq!(frame, reference_unpad(bytes), "padding read differently");
        let Some(frame) = frame else {
            return answered;
        };
        if let Ok(InitiatorFrame::Ctap {
            command,
            parameters,
        }) = InitiatorFrame::parse(&frame)
        {
            let request = [&[command][..], parameters].concat();
            let answer = authenticator.process_cbor(PEER, &request);
            // A phone's service, nothing more: written here from the hybrid policy's text,
            // not from its code.
            let served = [
                Command::GetAssertion,
                Command::GetInfo,
                Command::ClientPin,
                Command::GetNextAssertion,
                Command::Selection,
            ];
            if command == Command::MakeCredential.as_byte() {
                assert_eq!(
                    answer,
                    [StatusCode::NotAllowed.as_byte()],
                    "a \"ga\" session registered"
                );
            } else if !Command::from_byte(command).is_some_and(|c| served.contains(&c)) {
                assert_eq!(
                    answer,
                    [StatusCode::InvalidCommand.as_byte()],
                    "a hybrid peer was served {command:#x}"
                );
            }
            let sent = us
                .encrypt(&messages::ctap_response_frame(&answer))
                .expect("an answer encrypts");
            let read = them.decrypt(&sent).expect("the initiator reads our frame");
            assert_eq!(
                read,
                [&[1u8][..], &answer].concat(),
                "answer changed in the tunnel"
            );
            answered += 1;
        }
    }
    answered
}

/// The padding rule as the caBLE fact sheet states it, written independently.
fn reference_unpad(padded: &[u8]) -> Option<Vec<u8>> {
    let (&zeros, _) = padded.split_last()?;
    let content = padded.len().checked_sub(usize::from(zeros) + 1)?;
    Some(padded[..content].to_vec())
}

/// The initiator's frame keys, with the frame construction of caBLE written out by hand:
/// AES-256-GCM, nonce 8 zero bytes | BE32 counter, no associated data.
struct InitiatorSide {
    write: Aes256Gcm,
    read: Aes256Gcm,
    written: u32,
    read_count: u32,
}

impl InitiatorSide {
    fn new(write_key: &[u8; 32], read_key: &[u8; 32]) -> Self {
        InitiatorSide {
            write: Aes256Gcm::new_from_slice(write_key).unwrap(),
            read: Aes256Gcm::new_from_slice(read_key).unwrap(),
            written: 0,
            read_count: 0,
        }
    }

    fn nonce(counter: u32) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        nonce[8..].copy_from_slice(&counter.to_be_bytes());
        nonce
    }

    fn encrypt(&mut self, padded: &[u8]) -> Vec<u8> {
        let nonce = Self::nonce(self.written);
        self.written += 1;
        self.write
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: padded,
                    aad: &[],
                },
            )
            .unwrap()
    }

    fn decrypt(&mut self, frame: &[u8]) -> Option<Vec<u8>> {
        let nonce = Self::nonce(self.read_count);
        let padded = self
            .read
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: frame,
                    aad: &[],
                },
            )
            .ok()?;
        self.read_count += 1;
        reference_unpad(&padded)
    }
}

/// snow as the initiator (it knows its identity key, we know nothing), with a fixed
/// ephemeral key; `None` if the bytes are no valid P-256 scalar.
fn snow_initiator(psk: &[u8; 32], ephemeral: [u8; 32]) -> Option<(snow::HandshakeState, Vec<u8>)> {
    p256::SecretKey::from_slice(&ephemeral).ok()?;
    let params: NoiseParams = handshake::PROTOCOL_NAME.parse().unwrap();
    let mut noise = snow::Builder::with_resolver(params, Box::new(FixedEphemeral(ephemeral)))
        .prologue(&handshake::QR_PROLOGUE)
        .unwrap()
        .local_private_key(&IDENTITY)
        .unwrap()
        .psk(0, psk)
        .unwrap()
        .build_initiator()
        .unwrap();
    let mut message = vec![0u8; 128];
    let len = noise.write_message(&[], &mut message).unwrap();
    message.truncate(len);
    Some((noise, message))
}

/// snow's primitives, with a fixed ephemeral key as its randomness.
struct FixedEphemeral([u8; 32]);

impl CryptoResolver for FixedEphemeral {
    fn resolve_rng(&self) -> Option<Box<dyn snow::types::Random>> {
        Some(Box::new(FixedBytes(self.0)))
    }
    fn resolve_dh(&self, choice: &snow::params::DHChoice) -> Option<Box<dyn snow::types::Dh>> {
        DefaultResolver.resolve_dh(choice)
    }
    fn resolve_hash(
        &self,
        choice: &snow::params::HashChoice,
    ) -> Option<Box<dyn snow::types::Hash>> {
        DefaultResolver.resolve_hash(choice)
    }
    fn resolve_cipher(
        &self,
        choice: &snow::params::CipherChoice,
    ) -> Option<Box<dyn snow::types::Cipher>> {
        DefaultResolver.resolve_cipher(choice)
    }
}

struct FixedBytes([u8; 32]);

impl snow::types::Random for FixedBytes {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        for (d, s) in dest.iter_mut().zip(self.0.iter().cycle()) {
            *d = *s;
        }
        Ok(())
    }
}

/// A QR code Chrome showed (the vector of protocol's qr tests).
pub const CHROME_QR: &str = "FIDO:/162870791865632382552704231438327900152302540348097243854039966655366469794954476199158014113179232779520163209900691930075274801398564434658077048963842109321447142660";

/// Seeds made from real data: Chrome's QR code (as text, lower-case, and as CBOR), and a
/// session whose frames carry getInfo, a makeCredential, a bad-padding frame, a forged frame
/// and a shutdown. Committed in `seeds/hybrid_*/generated-*`, checked by the tests below.
pub fn generated_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let cbor = digits::decode(&CHROME_QR["FIDO:/".len()..]).expect("Chrome's digits");
    let text = |selector: u8, s: &str| [&[selector][..], s.as_bytes()].concat();
    let mut tunnel = vec![1u8];
    // EID: nonce, routing ID, domain 0 (cable.ua5v.com), spare byte.
    tunnel.extend_from_slice(&[7; 10]);
    tunnel.extend_from_slice(&[1, 2, 3, 0, 0, 9]);
    tunnel.extend_from_slice(&[0x22; 32]);
    tunnel.extend_from_slice(&[0x33; 32]);
    let make_credential = crate::ctap2_request::make_credential("example.com", b"u", -7, true);
    for (kind, frame) in [
        (1u8, pad(&[1, 0x04])),
        (1, pad(&[&[1u8][..], &make_credential].concat())),
        (1, vec![1, 0x04, 0x40]),
        (0, vec![0x55; 48]),
        (1, pad(&[0])),
    ] {
        tunnel.push(kind);
        tunnel.extend_from_slice(&(frame.len() as u16).to_be_bytes());
        tunnel.extend_from_slice(&frame);
    }
    vec![
        ("hybrid_qr", "generated-chrome-text", text(0, CHROME_QR)),
        (
            "hybrid_qr",
            "generated-chrome-lowercase",
            text(0, &CHROME_QR.to_lowercase()),
        ),
        (
            "hybrid_qr",
            "generated-chrome-cbor",
            [&[1u8][..], &cbor].concat(),
        ),
        ("hybrid_tunnel", "generated-session", tunnel),
    ]
}

/// caBLE padding: zeros up to a multiple of 32, the last byte counting them.
fn pad(plaintext: &[u8]) -> Vec<u8> {
    let len = (plaintext.len() / 32 + 1) * 32;
    let mut out = plaintext.to_vec();
    out.resize(len - 1, 0);
    out.push((len - 1 - plaintext.len()) as u8);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_seeds_run_and_are_committed() {
        for (target, name, seed) in generated_seeds() {
            match target {
                "hybrid_qr" => qr(&seed),
                _ => assert_eq!(tunnel_answers(&seed), 2, "getInfo and makeCredential"),
            }
            crate::committed_seeds::assert_committed(target, [(name, seed)]);
        }
    }

    #[test]
    fn chrome_qr_code_is_accepted_as_text_and_cbor() {
        assert!(QrRequest::parse(CHROME_QR, u64::MAX / 2, u64::MAX).is_ok());
    }
}

//! libwebauthn 0.11 (hybrid through pxp 0.1) as the initiator, unmodified. It always dials
//! `wss://<tunnel domain>/cable/connect/...`: the test runs it in a mount namespace whose
//! /etc/hosts points cable.ua5v.com at 127.0.0.1, with the test CA in SSL_CERT_FILE.
//!
//! Usage: lwa_initiator [PNG_DIR]
//! For each ceremony it prints `QR <text>` (with PNG_DIR, the sign-in's QR code is written as a
//! picture instead and `QRPNG <path>` printed), then `OK register` / `OK authenticate` once a
//! webauthn-rs-core relying party has verified the attestation and the assertion signature.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use libwebauthn::ops::webauthn::{
    GetAssertionRequest, JsonFormat, MakeCredentialRequest, OriginValidation, RequestOrigin,
    RequestSettings, WebAuthnIDLResponse as _,
};
use libwebauthn::transport::hybrid::qr_code_device::{
    PxpQrCodeDevice, PxpTransports, QrCodeOperationHint,
};
use libwebauthn::transport::{Channel as _, ChannelSettings, Device};
use libwebauthn::webauthn::WebAuthn;
use webauthn_rs_core::proto::{
    AttestationConveyancePreference, PublicKeyCredential, RegisterPublicKeyCredential,
    UserVerificationPolicy,
};
use webauthn_rs_core::WebauthnCore;

const RP_ID: &str = "example.test";
const ORIGIN: &str = "https://example.test";

/// Shows the QR code of a new hybrid session: as text (`QR <text>`), or as a picture written
/// to `png` (`QRPNG <path>`), as a screenshot of the browser's dialog would be.
fn show_qr(device: &PxpQrCodeDevice, png: Option<PathBuf>) {
    let text = device.qr_code.to_string();
    let mut out = std::io::stdout().lock();
    match png {
        None => writeln!(out, "QR {text}").unwrap(),
        Some(path) => {
            qrcode::QrCode::new(text.as_bytes())
                .unwrap()
                .render::<image::Luma<u8>>()
                .build()
                .save(&path)
                .unwrap();
            writeln!(out, "QRPNG {}", path.display()).unwrap();
        }
    }
    out.flush().unwrap();
}

/// The `publicKey` member of an RP's options, as libwebauthn's JSON input.
fn public_key_json(options: &impl serde::Serialize) -> String {
    let value = serde_json::to_value(options).unwrap();
    serde_json::to_string(&value["publicKey"]).unwrap()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let png_dir = std::env::args().nth(1).map(PathBuf::from);
    let origin_url = webauthn_authenticator_rs::prelude::Url::parse(ORIGIN).unwrap();
    let rp = WebauthnCore::new_unsafe_experts_only(
        "fido2d hybrid test",
        RP_ID,
        vec![origin_url],
        Duration::from_secs(60),
        None,
        None,
    );
    let origin: RequestOrigin = ORIGIN.try_into().unwrap();
    let settings = RequestSettings {
        origin: OriginValidation::Trust,
    };

    // Register a discoverable credential.
    let started = Instant::now();
    let builder = rp
        .new_challenge_register_builder(b"lwa-user-0001", "bob", "Bob")
        .unwrap()
        .attestation(AttestationConveyancePreference::Direct)
        // fido2d has no PIN or built-in UV yet: a presence-only credential.
        .user_verification_policy(UserVerificationPolicy::Discouraged_DO_NOT_USE)
        .require_resident_key(true);
    let (challenge, state) = rp.generate_challenge_register(builder).unwrap();
    let request = MakeCredentialRequest::prepare(&origin, &public_key_json(&challenge), &settings)
        .await
        .expect("libwebauthn accepts the RP's creation options");
    let mut device = PxpQrCodeDevice::new_transient(
        QrCodeOperationHint::MakeCredential,
        PxpTransports::CloudAssistedOrLocal,
    )
    .unwrap();
    show_qr(&device, None);
    let mut channel = device.channel(ChannelSettings::default()).await.unwrap();
    let response = channel
        .webauthn_make_credential(&request)
        .await
        .expect("makeCredential over hybrid");
    channel.close().await;
    let json = response
        .to_json_string(&request, JsonFormat::Minified)
        .unwrap();
    let registration: RegisterPublicKeyCredential =
        serde_json::from_str(&json).expect("a WebAuthn registration response");
    let credential = rp
        .register_credential(&registration, &state, None)
        .expect("the RP accepts the attestation");
    println!(
        "OK register cred_id_len={} in {:?}",
        credential.cred_id.len(),
        started.elapsed()
    );

    // Sign in with it, in a new hybrid session.
    let started = Instant::now();
    let builder = rp
        .new_challenge_authenticate_builder(vec![credential.clone()], None)
        .unwrap();
    let (challenge, state) = rp.generate_challenge_authenticate(builder).unwrap();
    let request = GetAssertionRequest::prepare(&origin, &public_key_json(&challenge), &settings)
        .await
        .expect("libwebauthn accepts the RP's request options");
    let mut device = PxpQrCodeDevice::new_transient(
        QrCodeOperationHint::GetAssertionRequest,
        PxpTransports::CloudAssistedOrLocal,
    )
    .unwrap();
    show_qr(&device, png_dir.map(|dir| dir.join("authenticate.png")));
    let mut channel = device.channel(ChannelSettings::default()).await.unwrap();
    let response = channel
        .webauthn_get_assertion(&request)
        .await
        .expect("getAssertion over hybrid");
    channel.close().await;
    let assertion = response.assertions.first().expect("one assertion");
    let json = assertion
        .to_json_string(&request, JsonFormat::Minified)
        .unwrap();
    let assertion: PublicKeyCredential =
        serde_json::from_str(&json).expect("a WebAuthn authentication response");
    let result = rp
        .authenticate_credential(&assertion, &state)
        .expect("the RP accepts the assertion signature");
    assert_eq!(result.cred_id(), &credential.cred_id);
    println!(
        "OK authenticate counter={} in {:?}",
        result.counter(),
        started.elapsed()
    );
    std::process::exit(0);
}

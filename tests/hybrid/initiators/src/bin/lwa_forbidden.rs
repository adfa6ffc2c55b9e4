//! libwebauthn 0.11 as a hybrid initiator that asks for more than a phone serves: in one
//! sign-in ("ga") session it sends, through libwebauthn's own CTAP2 requests, each command a
//! hybrid peer must not get (PIN retries, credential management, large blobs,
//! authenticatorConfig, reset, a makeCredential the QR code did not ask for), then a getInfo
//! that must still be answered and offer none of them. (A silent getAssertion cannot be built
//! with libwebauthn's public types; the protocol's tests and its fuzz target cover it.)
//!
//! Usage: lwa_forbidden (run like lwa_initiator: a private /etc/hosts, the test CA)
//! Prints `QR <text>`, then `OK refused <name> <error>` for each command refused with the
//! expected error, `FAIL <name> ...` otherwise, and `OK served getInfo` at the end.

use std::io::Write;
use std::time::Duration;

use libwebauthn::proto::ctap2::{
    Ctap2, Ctap2AuthenticatorConfigCommand, Ctap2AuthenticatorConfigRequest, Ctap2ClientPinRequest,
    Ctap2CredentialManagementRequest, Ctap2LargeBlobsRequest, Ctap2MakeCredentialRequest,
    Ctap2PinUvAuthProtocol, Ctap2PublicKeyCredentialRpEntity, Ctap2PublicKeyCredentialUserEntity,
};
use libwebauthn::proto::CtapError;
use libwebauthn::transport::hybrid::qr_code_device::{
    PxpQrCodeDevice, PxpTransports, QrCodeOperationHint,
};
use libwebauthn::transport::{Channel as _, ChannelSettings, Device};
use libwebauthn::webauthn::WebAuthnError;

const TIMEOUT: Duration = Duration::from_secs(20);

fn report<T, E: std::fmt::Debug>(
    name: &str,
    expected: CtapError,
    result: Result<T, WebAuthnError<E>>,
) {
    let line = match result {
        Err(WebAuthnError::Ctap(error)) if error == expected => {
            format!("OK refused {name} {error:?}")
        }
        Err(other) => format!("FAIL {name}: {other:?}, not {expected:?}"),
        Ok(_) => format!("FAIL {name}: served"),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").unwrap();
    out.flush().unwrap();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let mut device = PxpQrCodeDevice::new_transient(
        QrCodeOperationHint::GetAssertionRequest,
        PxpTransports::CloudAssistedOrLocal,
    )
    .unwrap();
    println!("QR {}", device.qr_code);
    std::io::stdout().flush().unwrap();
    let mut channel = device.channel(ChannelSettings::default()).await.unwrap();

    let invalid = CtapError::InvalidCommand;
    let protocol = Some(Ctap2PinUvAuthProtocol::Two);
    report(
        "getPINRetries",
        invalid,
        channel
            .ctap2_client_pin(
                &Ctap2ClientPinRequest::new_get_pin_retries(protocol),
                TIMEOUT,
            )
            .await,
    );
    report(
        "getCredsMetadata",
        invalid,
        channel
            .ctap2_credential_management(
                &Ctap2CredentialManagementRequest::new_get_credential_metadata(),
                TIMEOUT,
            )
            .await,
    );
    report(
        "enumerateCredentialsGetNextCredential",
        invalid,
        channel
            .ctap2_credential_management(
                &Ctap2CredentialManagementRequest::new_enumerate_credentials_next(),
                TIMEOUT,
            )
            .await,
    );
    report(
        "largeBlobs get",
        invalid,
        channel
            .ctap2_large_blobs(&Ctap2LargeBlobsRequest::new_get(0, 1024), TIMEOUT)
            .await,
    );
    let toggle = Ctap2AuthenticatorConfigRequest {
        subcommand: Ctap2AuthenticatorConfigCommand::ToggleAlwaysUv,
        subcommand_params: None,
        protocol: None,
        uv_auth_param: None,
    };
    report(
        "toggleAlwaysUv",
        invalid,
        channel.ctap2_authenticator_config(&toggle, TIMEOUT).await,
    );
    report(
        "reset",
        invalid,
        channel.ctap2_authenticator_reset(TIMEOUT).await,
    );
    report(
        "makeCredential in a sign-in session",
        CtapError::NotAllowed,
        channel
            .ctap2_make_credential(&make_credential(), TIMEOUT)
            .await,
    );
    match channel.ctap2_get_info().await {
        Ok(info) => {
            let offered = ["clientPin", "credMgmt", "largeBlobs", "authnrCfg"]
                .into_iter()
                .filter(|o| info.options.as_ref().is_some_and(|m| m.contains_key(*o)))
                .collect::<Vec<_>>();
            if offered.is_empty() {
                println!("OK served getInfo");
            } else {
                println!("FAIL getInfo offers {offered:?} over hybrid");
            }
        }
        Err(err) => println!("FAIL getInfo: {err:?}"),
    }
    channel.close().await;
    std::process::exit(0);
}

/// A well-formed makeCredential, for the refusal of the operation the QR code did not ask for.
fn make_credential() -> Ctap2MakeCredentialRequest {
    Ctap2MakeCredentialRequest {
        hash: vec![0xcd; 32].into(),
        relying_party: Ctap2PublicKeyCredentialRpEntity::new("example.test", "example"),
        user: Ctap2PublicKeyCredentialUserEntity::new(b"u", "u", "U"),
        algorithms: vec![Default::default()],
        exclude: None,
        extensions: None,
        options: None,
        pin_auth_param: None,
        pin_auth_proto: None,
        enterprise_attestation: None,
        attestation_formats_preference: None,
    }
}

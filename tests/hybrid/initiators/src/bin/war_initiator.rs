//! webauthn-authenticator-rs 0.6.2 as the hybrid initiator (the "browser"), unmodified:
//! it shows a QR code (printed as `QR <text>` on stdout), scans for the advert through
//! btleplug (BlueZ on the D-Bus named by DBUS_SYSTEM_BUS_ADDRESS), joins the tunnel and runs
//! one ceremony a session. A webauthn-rs-core relying party checks both results.
//!
//! Usage: war_initiator [TUNNEL_BASE]   (e.g. ws://127.0.0.1:8080; default: the spec's wss URL)
//! Prints `OK register` and `OK authenticate` lines; exits 0 when both were verified.

use std::io::Write;
use std::time::{Duration, Instant};

use webauthn_authenticator_rs::cable::{
    connect_cable_authenticator, connect_cable_authenticator_with_tunnel_uri,
};
use webauthn_authenticator_rs::prelude::Url;
use webauthn_authenticator_rs::types::{CableRequestType, CableState, EnrollSampleStatus};
use webauthn_authenticator_rs::ui::UiCallback;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_rs_core::proto::{AttestationConveyancePreference, UserVerificationPolicy};
use webauthn_rs_core::WebauthnCore;

const RP_ID: &str = "example.test";
const ORIGIN: &str = "https://example.test";

#[derive(Debug)]
struct PrintQr;

impl UiCallback for PrintQr {
    fn request_pin(&self) -> Option<String> {
        None
    }
    fn request_touch(&self) {}
    fn processing(&self) {}
    fn fingerprint_enrollment_feedback(&self, _: u32, _: Option<EnrollSampleStatus>) {}
    fn cable_qr_code(&self, _: CableRequestType, url: String) {
        let mut out = std::io::stdout().lock();
        writeln!(out, "QR {url}").unwrap();
        out.flush().unwrap();
    }
    fn dismiss_qr_code(&self) {}
    fn cable_status_update(&self, state: CableState) {
        eprintln!("[war] {state:?}");
    }
}

async fn connect<'a>(
    tunnel: &Option<String>,
    kind: CableRequestType,
    ui: &'a PrintQr,
) -> impl WebauthnAuthenticator + 'a {
    let connected = match tunnel {
        Some(base) => {
            let uri: http::Uri = base.parse().expect("tunnel base URL");
            let parts = uri.into_parts();
            let builder = http::uri::Builder::new()
                .scheme(parts.scheme.expect("scheme"))
                .authority(parts.authority.expect("authority"));
            connect_cable_authenticator_with_tunnel_uri(kind, ui, builder).await
        }
        None => connect_cable_authenticator(kind, ui).await,
    };
    connected.expect("hybrid connection to the authenticator")
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let tunnel = std::env::args().nth(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The ceremonies block on their own executor: run them with the runtime entered.
    let _entered = runtime.enter();
    let ui: &'static PrintQr = Box::leak(Box::new(PrintQr));
    let origin = Url::parse(ORIGIN).unwrap();
    let rp = WebauthnCore::new_unsafe_experts_only(
        "fido2d hybrid test",
        RP_ID,
        vec![origin.clone()],
        Duration::from_secs(60),
        None,
        None,
    );

    // Register a discoverable credential.
    let started = Instant::now();
    let builder = rp
        .new_challenge_register_builder(b"war-user-0001", "alice", "Alice")
        .unwrap()
        .attestation(AttestationConveyancePreference::Direct)
        // fido2d has no PIN or built-in UV yet: a presence-only credential.
        .user_verification_policy(UserVerificationPolicy::Discouraged_DO_NOT_USE)
        .require_resident_key(true);
    let (challenge, state) = rp.generate_challenge_register(builder).unwrap();
    let mut authenticator = runtime.block_on(connect(
        &tunnel,
        CableRequestType::DiscoverableMakeCredential,
        ui,
    ));
    let registration = authenticator
        .do_registration(origin.clone(), challenge)
        .expect("makeCredential over hybrid");
    drop(authenticator);
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
    let mut authenticator = runtime.block_on(connect(&tunnel, CableRequestType::GetAssertion, ui));
    let assertion = authenticator
        .do_authentication(origin, challenge)
        .expect("getAssertion over hybrid");
    drop(authenticator);
    let result = rp
        .authenticate_credential(&assertion, &state)
        .expect("the RP accepts the assertion signature");
    assert_eq!(result.cred_id(), &credential.cred_id);
    println!(
        "OK authenticate counter={} in {:?}",
        result.counter(),
        started.elapsed()
    );
}

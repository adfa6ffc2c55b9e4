//! The TPM keystore on swtpm (a real TPM 2.0 simulator), next to the bare TPM commands the
//! ceremonies contain, so the keystore's and the protocol's overhead reads as a ratio:
//! getAssertion against TPM2_Load + TPM2_Sign + TPM2_FlushContext, makeCredential against
//! TPM2_Create + the same three (the self-attestation signature).
//!
//! Both sides use the same connection style (one salted HMAC session, parameter encryption
//! for the authValue on creation) and the same object templates, each on a swtpm of its own
//! (swtpm serves one connection at a time).
//!
//! After criterion's runs, the bench times the two sides interleaved (one bare operation, one
//! ceremony, and again) and prints the ratio of the medians: on a busy machine that ratio holds
//! up far better than two runs minutes apart.
//!
//! Run: `cargo bench -p fido2d-benches --bench tpm` (starts its own swtpm instances).

use std::hint::black_box;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use fido2d_benches::{
    credential_id_of, get_assertion_request, make_credential_request, tpm_authenticator,
    BENCH_ORIGIN,
};
use fido2d_tests::swtpm::Swtpm;
use storage::tpm::templates;
use tss_esapi::attributes::SessionAttributesBuilder;
use tss_esapi::constants::tss::{TPM2_RH_NULL, TPM2_ST_HASHCHECK};
use tss_esapi::constants::SessionType;
use tss_esapi::handles::KeyHandle;
use tss_esapi::interface_types::algorithm::HashingAlgorithm;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::AuthSession;
use tss_esapi::structures::{
    Auth, Digest, HashcheckTicket, Private, Public, SignatureScheme, SymmetricDefinition,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::tss2_esys::TPMT_TK_HASHCHECK;
use tss_esapi::Context;

/// A bare tss-esapi connection with the storage primary key and one salted session.
struct BareTpm {
    context: Context,
    primary: KeyHandle,
    session: AuthSession,
}

impl BareTpm {
    fn open(tcti: &str) -> BareTpm {
        let mut context = Context::new(TctiNameConf::from_str(tcti).unwrap()).unwrap();
        let primary = context
            .execute_with_session(Some(AuthSession::Password), |ctx| {
                ctx.create_primary(
                    Hierarchy::Owner,
                    templates::storage_primary().unwrap(),
                    None,
                    None,
                    None,
                    None,
                )
            })
            .unwrap()
            .key_handle;
        let session = context
            .start_auth_session(
                Some(primary),
                None,
                None,
                SessionType::Hmac,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .unwrap()
            .unwrap();
        context.set_sessions((Some(session), None, None));
        BareTpm {
            context,
            primary,
            session,
        }
    }

    fn parameter_encryption(&mut self, decrypt: bool) {
        let (attributes, mask) = SessionAttributesBuilder::new()
            .with_continue_session(true)
            .with_decrypt(decrypt)
            .build();
        self.context
            .tr_sess_set_attributes(self.session, attributes, mask)
            .unwrap();
    }

    /// TPM2_Create of a credential key.
    fn create(&mut self, auth: &Auth) -> (Private, Public) {
        self.parameter_encryption(true);
        let created = self
            .context
            .create(
                self.primary,
                templates::credential_key().unwrap(),
                Some(auth.clone()),
                None,
                None,
                None,
            )
            .unwrap();
        (created.out_private, created.out_public)
    }

    /// TPM2_Load + TPM2_Sign + TPM2_FlushContext.
    fn load_sign_flush(&mut self, key: &(Private, Public), auth: &Auth, digest: &Digest) {
        self.parameter_encryption(false);
        let handle = self
            .context
            .load(self.primary, key.0.clone(), key.1.clone())
            .unwrap();
        self.context
            .tr_set_auth(handle.into(), auth.clone())
            .unwrap();
        let ticket = HashcheckTicket::try_from(TPMT_TK_HASHCHECK {
            tag: TPM2_ST_HASHCHECK,
            hierarchy: TPM2_RH_NULL,
            digest: Default::default(),
        })
        .unwrap();
        black_box(
            self.context
                .sign(handle, digest.clone(), SignatureScheme::Null, ticket)
                .unwrap(),
        );
        self.context.flush_context(handle.into()).unwrap();
    }
}

/// Both sides, each on its own swtpm.
struct Setup {
    _tpms: (Swtpm, Swtpm),
    _dir: tempfile::TempDir,
    bare: BareTpm,
    key: (Private, Public),
    auth: Auth,
    digest: Digest,
    authenticator: fido2d_benches::TpmAuthenticator,
    make_credential: Vec<u8>,
    get_assertion: Vec<u8>,
}

impl Setup {
    fn new() -> Setup {
        let tpms = (Swtpm::start(), Swtpm::start());
        let auth = Auth::try_from(vec![0x42; 32]).unwrap();
        let digest = Digest::try_from(vec![0x5a; 32]).unwrap();
        let mut bare = BareTpm::open(&tpms.0.tcti());
        let key = bare.create(&auth);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut authenticator = tpm_authenticator(dir.path(), &tpms.1.tcti());
        let make_credential = make_credential_request("example.com", b"user", -7, false);
        let response = authenticator.process_cbor(BENCH_ORIGIN, &make_credential);
        let credential_id = credential_id_of(&response);
        let get_assertion = get_assertion_request("example.com", Some(&credential_id));
        assert_eq!(
            authenticator.process_cbor(BENCH_ORIGIN, &get_assertion)[0],
            0,
            "getAssertion works"
        );
        Setup {
            _tpms: tpms,
            _dir: dir,
            bare,
            key,
            auth,
            digest,
            authenticator,
            make_credential,
            get_assertion,
        }
    }

    fn bare_assertion(&mut self) {
        self.bare
            .load_sign_flush(&self.key, &self.auth, &self.digest);
    }

    fn bare_registration(&mut self) {
        let key = self.bare.create(&self.auth);
        self.bare.load_sign_flush(&key, &self.auth, &self.digest);
    }

    fn get_assertion(&mut self) {
        let response = self
            .authenticator
            .process_cbor(BENCH_ORIGIN, black_box(&self.get_assertion));
        assert_eq!(response[0], 0);
    }

    fn make_credential(&mut self) {
        let response = self
            .authenticator
            .process_cbor(BENCH_ORIGIN, black_box(&self.make_credential));
        assert_eq!(response[0], 0);
    }
}

fn tpm(c: &mut Criterion) {
    let mut setup = Setup::new();
    let mut group = c.benchmark_group("tpm");
    group.sample_size(30);
    group.bench_function("bare_load_sign_flush", |b| {
        b.iter(|| setup.bare_assertion())
    });
    group.bench_function("get_assertion", |b| b.iter(|| setup.get_assertion()));
    group.bench_function("bare_create_load_sign_flush", |b| {
        b.iter(|| setup.bare_registration())
    });
    group.bench_function("make_credential", |b| b.iter(|| setup.make_credential()));
    group.finish();
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// `rounds` pairs of (bare, ceremony), timed alternately; prints both medians and their ratio.
fn interleaved(
    setup: &mut Setup,
    name: &str,
    rounds: usize,
    bare: fn(&mut Setup),
    ceremony: fn(&mut Setup),
) {
    let (mut bare_times, mut ceremony_times) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let start = Instant::now();
        bare(setup);
        bare_times.push(start.elapsed());
        let start = Instant::now();
        ceremony(setup);
        ceremony_times.push(start.elapsed());
    }
    let (bare, ceremony) = (median(bare_times), median(ceremony_times));
    println!(
        "interleaved, {rounds} pairs: {name} {ceremony:.2?} / bare {bare:.2?} = {:.3}x",
        ceremony.as_secs_f64() / bare.as_secs_f64()
    );
}

fn interleaved_ratios() {
    let mut setup = Setup::new();
    interleaved(
        &mut setup,
        "getAssertion",
        200,
        Setup::bare_assertion,
        Setup::get_assertion,
    );
    interleaved(
        &mut setup,
        "makeCredential",
        100,
        Setup::bare_registration,
        Setup::make_credential,
    );
}

criterion_group!(benches, tpm);

fn main() {
    benches();
    // Only `cargo bench` passes --bench; `cargo test --benches` runs each bench once, and the
    // interleaved figures only matter in a real run.
    if std::env::args().any(|arg| arg == "--bench") {
        interleaved_ratios();
    }
    Criterion::default().configure_from_args().final_summary();
}

//! Several clients on their own CTAPHID channels (their own UDP sockets) hammer one daemon at
//! once with multi-packet PINGs and getAssertions. Every answer must be the answer to that
//! client's request (the PING echo byte for byte, the assertion signed over that client's own
//! clientDataHash and verified with the credential's public key) or CTAPHID_ERROR
//! CHANNEL_BUSY while another channel's transaction runs, after which the client tries again;
//! a report of another channel, a broken sequence or any other error fails the test.
//! Bounded: 4 clients x 60 transactions, 60 seconds.

use fido2d_tests::tiers::{skip, Tier};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use ciborium::Value;
use fido2d_tests::requests::{get_assertion_of, make_credential_es256};
use fido2d_tests::{Daemon, HidAnswer, HidClient};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{DerSignature, VerifyingKey};
use protocol::cbor;
use protocol::wire::{GetAssertionResponse, MakeCredentialResponse, Response as _};
use sha2::{Digest, Sha256};

const CLIENTS: usize = 4;
const TRANSACTIONS: usize = 60;
const TIME_LIMIT: Duration = Duration::from_secs(60);
const RP: &str = "hammer.example";

fn field(map: &Value, key: i64) -> &Value {
    map.as_map()
        .and_then(|m| m.iter().find(|(k, _)| *k == Value::Integer(key.into())))
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no key {key} in {map:?}"))
}

/// Registers an ES256 credential; returns its ID and public key.
fn register(client: &mut HidClient) -> (Vec<u8>, VerifyingKey) {
    let answer = client
        .cbor(&make_credential_es256(RP, &[1], false))
        .expect("mc");
    let HidAnswer::Message(_, body) = answer else {
        panic!("makeCredential answered {answer:?}")
    };
    assert_eq!(body[0], 0, "makeCredential status");
    let response = MakeCredentialResponse::decode(&body[1..]).expect("a makeCredential response");
    let id = response.credential_id().expect("attested credential data");
    let auth_data = &response.auth_data;
    let key = cbor::decode(&auth_data[55 + id.len()..]).expect("COSE key");
    let id = id.to_vec();
    let x = field(&key, -2).as_bytes().expect("x");
    let y = field(&key, -3).as_bytes().expect("y");
    let point = [&[0x04][..], x, y].concat();
    (
        id,
        VerifyingKey::from_sec1_bytes(&point).expect("a P-256 key"),
    )
}

/// Sends until the answer is not CHANNEL_BUSY; counts the busy answers.
fn until_not_busy(
    client: &mut HidClient,
    command: u8,
    payload: &[u8],
    busy: &AtomicUsize,
) -> HidAnswer {
    loop {
        match client.transact(command, payload) {
            Ok(HidAnswer::Error(HidClient::ERR_CHANNEL_BUSY)) => {
                busy.fetch_add(1, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(1));
            }
            Ok(answer) => return answer,
            Err(e) => panic!("channel {:#x}: {e}", client.cid),
        }
    }
}

#[test]
fn clients_on_separate_channels_get_their_own_answers_or_busy() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = Daemon::auto_approve();
    let (id, key) = register(&mut HidClient::connect(daemon.addr()).expect("INIT"));
    let busy = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();

    let workers: Vec<_> = (0..CLIENTS)
        .map(|n| {
            let (id, key, busy, addr) = (id.clone(), key, Arc::clone(&busy), daemon.addr());
            thread::spawn(move || {
                let mut client = HidClient::connect(addr).expect("INIT");
                for i in 0..TRANSACTIONS {
                    assert!(started.elapsed() < TIME_LIMIT, "client {n} ran out of time");
                    let tag = (n * 1000 + i) as u32;
                    if i % 2 == 0 {
                        // 1 to 3000 bytes: up to 52 packets, so transactions overlap.
                        let len = 1 + (tag as usize * 7919) % 3000;
                        let payload: Vec<u8> = (0..len).map(|j| (j as u32 ^ tag) as u8).collect();
                        let echo =
                            until_not_busy(&mut client, HidClient::CMD_PING, &payload, &busy);
                        assert_eq!(
                            echo,
                            HidAnswer::Message(HidClient::CMD_PING, payload),
                            "client {n} got another PING back"
                        );
                    } else {
                        let cdh: [u8; 32] = Sha256::digest(tag.to_be_bytes()).into();
                        let request = get_assertion_of(RP, &id, cdh);
                        let answer =
                            until_not_busy(&mut client, HidClient::CMD_CBOR, &request, &busy);
                        let HidAnswer::Message(HidClient::CMD_CBOR, body) = answer else {
                            panic!("client {n}: getAssertion answered {answer:?}")
                        };
                        assert_eq!(body[0], 0, "client {n}: getAssertion status {:#x}", body[0]);
                        let response = GetAssertionResponse::decode(&body[1..])
                            .expect("a getAssertion response");
                        let (auth_data, signature) = (response.auth_data, response.signature);
                        let signed = [auth_data.as_slice(), &cdh].concat();
                        let signature = DerSignature::try_from(signature.as_slice()).expect("DER");
                        assert!(
                            key.verify(&signed, &signature).is_ok(),
                            "client {n} got an assertion for another request"
                        );
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a client failed");
    }
    println!(
        "{CLIENTS} clients x {TRANSACTIONS} transactions in {:?}, {} CHANNEL_BUSY answers",
        started.elapsed(),
        busy.load(Ordering::Relaxed)
    );
}

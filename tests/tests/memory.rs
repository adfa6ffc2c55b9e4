//! No memory growth under load: a loop of ceremonies against the daemon (getAssertion, a
//! discoverable makeCredential that replaces the same user's credential, getInfo, a
//! multi-packet PING), with the resident set size read from /proc after a warm-up and at the
//! end. Leaks, per-request caches and unbounded queues all show up as growth.
//!
//! CI runs 3,000 rounds. A longer soak: FIDO2D_SOAK_ROUNDS=200000 cargo test --release -p
//! fido2d-tests --test memory -- --nocapture (about 4 minutes on a release build).

use fido2d_tests::tiers::{skip, Tier};
use std::fs;

use ciborium::Value;
use fido2d_tests::requests::make_credential_es256;
use fido2d_tests::{Daemon, HidAnswer, HidClient};
use protocol::cbor;

fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

fn get_assertion(rp: &str, id: &[u8], round: u32) -> Vec<u8> {
    let mut cdh = [0xab; 32];
    cdh[..4].copy_from_slice(&round.to_be_bytes());
    let descriptor = cbor::text_map(vec![
        ("id", Value::Bytes(id.to_vec())),
        ("type", text("public-key")),
    ]);
    let params = cbor::int_map(vec![
        (1, text(rp)),
        (2, Value::Bytes(cdh.to_vec())),
        (3, Value::Array(vec![descriptor])),
    ]);
    [vec![0x02], cbor::encode(&params)].concat()
}

fn ok_body(answer: HidAnswer, what: &str) -> Value {
    match answer {
        HidAnswer::Message(HidClient::CMD_CBOR, body) if body.first() == Some(&0) => {
            cbor::decode(&body[1..]).expect("CBOR")
        }
        other => panic!("{what} answered {other:?}"),
    }
}

/// The credential ID in a makeCredential answer's authData.
fn credential_id(answer: &Value) -> Vec<u8> {
    let auth_data = answer
        .as_map()
        .and_then(|m| m.iter().find(|(k, _)| *k == Value::Integer(2.into())))
        .and_then(|(_, v)| v.as_bytes())
        .expect("authData");
    let len = usize::from(u16::from_be_bytes([auth_data[53], auth_data[54]]));
    auth_data[55..55 + len].to_vec()
}

#[test]
fn a_loop_of_ceremonies_does_not_grow_the_daemon() {
    if skip(Tier::Udp) {
        return;
    }
    let rounds: u32 = std::env::var("FIDO2D_SOAK_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(3_000);
    let warm_up = (rounds / 5).max(200);
    let daemon = Daemon::auto_approve();
    let mut client = HidClient::connect(daemon.addr()).expect("INIT");
    let made = ok_body(
        client
            .cbor(&make_credential_es256("soak.example", b"u", false))
            .unwrap(),
        "mc",
    );
    let id = credential_id(&made);
    let ping: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();

    let mut baseline = None;
    for round in 0..rounds {
        ok_body(
            client
                .cbor(&get_assertion("soak.example", &id, round))
                .unwrap(),
            "ga",
        );
        if round % 10 == 0 {
            ok_body(
                client
                    .cbor(&make_credential_es256("soak.example", b"rk", true))
                    .unwrap(),
                "rk",
            );
            ok_body(client.cbor(&[0x04]).unwrap(), "getInfo");
            let echo = client.transact(HidClient::CMD_PING, &ping).unwrap();
            assert_eq!(echo, HidAnswer::Message(HidClient::CMD_PING, ping.clone()));
        }
        if round + 1 == warm_up {
            baseline = Some(rss_kib(daemon.pid()));
        }
    }
    let baseline = baseline.expect("warm-up done");
    let end = rss_kib(daemon.pid());
    println!(
        "RSS after {warm_up} rounds: {baseline} KiB; after {rounds}: {end} KiB ({:+} KiB)",
        end as i64 - baseline as i64
    );
    // Allocator noise stays within a page or two per arena; a leak of even 100 bytes a round
    // would be hundreds of KiB here.
    assert!(
        end <= baseline + 128,
        "RSS grew from {baseline} KiB to {end} KiB over {} rounds",
        rounds - warm_up
    );
}

//! No memory growth under load: a loop of ceremonies against the daemon (getAssertion, a
//! discoverable makeCredential that replaces the same user's credential, getInfo, a
//! multi-packet PING), with the resident set size read from /proc after a warm-up and at the
//! end. Leaks, per-request caches and unbounded queues all show up as growth.
//!
//! CI runs 3,000 rounds. A longer soak: FIDO2D_SOAK_ROUNDS=200000 cargo test --release -p
//! fido2d-tests --test memory -- --nocapture (about 4 minutes on a release build).

use fido2d_tests::tiers::{skip, Tier};
use std::fs;

use fido2d_tests::requests::{credential_id, get_assertion_of, make_credential_es256};
use fido2d_tests::{Daemon, HidAnswer, HidClient};
use protocol::wire::{
    GetAssertionResponse, GetInfoRequest, GetInfoResponse, Request as _, Response as _,
};

fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn get_assertion(rp: &str, id: &[u8], round: u32) -> Vec<u8> {
    let mut cdh = [0xab; 32];
    cdh[..4].copy_from_slice(&round.to_be_bytes());
    get_assertion_of(rp, id, cdh)
}

/// The body of a successful CTAP2 answer (after the status byte).
fn ok_body(answer: HidAnswer, what: &str) -> Vec<u8> {
    match answer {
        HidAnswer::Message(HidClient::CMD_CBOR, mut body) if body.first() == Some(&0) => {
            body.remove(0);
            body
        }
        other => panic!("{what} answered {other:?}"),
    }
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
        let signed = ok_body(
            client
                .cbor(&get_assertion("soak.example", &id, round))
                .unwrap(),
            "ga",
        );
        GetAssertionResponse::decode(&signed).expect("a getAssertion response");
        if round % 10 == 0 {
            ok_body(
                client
                    .cbor(&make_credential_es256("soak.example", b"rk", true))
                    .unwrap(),
                "rk",
            );
            let info = ok_body(client.cbor(&GetInfoRequest.encode()).unwrap(), "getInfo");
            GetInfoResponse::decode(&info).expect("a getInfo response");
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

//! An idle daemon sleeps: after serving a client it uses no CPU time and no thread of it wakes
//! up, measured from /proc over 10 seconds (no polling loop, no periodic timer).

use fido2d_tests::tiers::{skip, Tier};
use std::fs;
use std::thread;
use std::time::Duration;

use fido2d_tests::{Daemon, HidAnswer, HidClient};
use protocol::wire::{GetInfoRequest, Request as _};

/// CPU time in clock ticks (utime + stime) and context switches, summed over all threads.
fn sample(pid: u32) -> (u64, u64) {
    let mut ticks = 0;
    let mut switches = 0;
    for task in fs::read_dir(format!("/proc/{pid}/task")).expect("/proc/PID/task") {
        let task = task.expect("a task").path();
        let Ok(stat) = fs::read_to_string(task.join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // Fields after the command name (which may hold spaces) in parentheses.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .expect("stat")
            .1
            .split_whitespace()
            .collect();
        // utime and stime are fields 14 and 15 of stat(5), i.e. 11 and 12 after ')'.
        ticks +=
            fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        let status = fs::read_to_string(task.join("status")).unwrap_or_default();
        for line in status.lines() {
            if let Some(n) = line
                .strip_prefix("voluntary_ctxt_switches:")
                .or_else(|| line.strip_prefix("nonvoluntary_ctxt_switches:"))
            {
                switches += n.trim().parse::<u64>().expect("a count");
            }
        }
    }
    (ticks, switches)
}

#[test]
fn an_idle_daemon_uses_no_cpu_and_never_wakes_up() {
    if skip(Tier::Udp) {
        return;
    }
    let daemon = Daemon::auto_approve();
    let mut client = HidClient::connect(daemon.addr()).expect("INIT");
    let answer = client.cbor(&GetInfoRequest.encode()).expect("getInfo");
    assert!(
        matches!(&answer, HidAnswer::Message(HidClient::CMD_CBOR, body) if body.first() == Some(&0)),
        "getInfo answered {answer:?}"
    );
    // Whatever the request started (the CTAPHID message timer is 500 ms) is over by now.
    thread::sleep(Duration::from_secs(1));

    let (ticks_before, switches_before) = sample(daemon.pid());
    thread::sleep(Duration::from_secs(10));
    let (ticks_after, switches_after) = sample(daemon.pid());

    println!(
        "idle 10 s: {} clock ticks of CPU, {} context switches",
        ticks_after - ticks_before,
        switches_after - switches_before
    );
    assert_eq!(ticks_after, ticks_before, "the idle daemon used CPU time");
    assert_eq!(
        switches_after, switches_before,
        "a thread of the idle daemon woke up (polling or a periodic timer)"
    );
}

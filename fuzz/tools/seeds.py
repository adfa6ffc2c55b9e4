#!/usr/bin/env python3
"""Turns recorded CTAPHID traces (see tests/e2e/udp_hid.py, FIDO2D_TRACE_DIR) into seeds.

Usage: python3 fuzz/tools/seeds.py TRACE_DIR SEED_DIR

Writes, for every trace (one client connection):
  ctaphid/        the host's reports in the layout of fido2d_fuzz::ctaphid (control byte:
                  elapsed time, answer the pending request first), split into pieces of at most
                  64 reports; plus pairs of traces interleaved report by report (two channels);
  ctap2_request/  every distinct request message: selector 0 + CBOR message, selector 1 + APDU;
  authenticator/  each connection's requests as one program of raw ops (fido2d_fuzz::
                  authenticator: op 8 = raw CBOR, op 9 = raw APDU, each u16 length + bytes +
                  presence 0 = approve), at most 48 requests a program;
  client_pin/     the same for connections that used clientPIN (0x06), as raw ops of
                  fido2d_fuzz::client_pin (op 9, u16 length + request).
Only the standard library is used; existing files are replaced, others kept.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

INIT_FLAG = 0x80
CMD_MSG = 0x03
CMD_CBOR = 0x10
REPORTS_PER_SEED = 64
REQUESTS_PER_PROGRAM = 48


def read_trace(path: Path) -> list[tuple[str, int, bytes]]:
    rows = []
    for line in path.read_text().splitlines():
        direction, ms, data = line.split()
        rows.append((direction, int(ms), bytes.fromhex(data)))
    return rows


def ctaphid_steps(reports: list[tuple[int, bytes]]) -> list[bytes]:
    """One step per report: control byte (elapsed / 16 ms, answer pending first) + report."""
    steps, last = [], None
    for ms, report in reports:
        elapsed = 0 if last is None else max(0, min((ms - last) // 16, 0x3F))
        last = ms
        steps.append(bytes([0x40 | elapsed]) + report)
    return steps


def messages(reports: list[bytes]) -> list[tuple[int, bytes]]:
    """The host's complete messages: (command, payload)."""
    out, current = [], None
    for report in reports:
        if report[4] & INIT_FLAG:
            cmd = report[4] & 0x7F
            length = int.from_bytes(report[5:7], "big")
            current = [cmd, length, bytearray(report[7:])]
        elif current is not None:
            current[2] += report[5:]
        if current is not None and len(current[2]) >= current[1]:
            out.append((current[0], bytes(current[2][: current[1]])))
            current = None
    return out


def write(directory: Path, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    (directory / name).write_bytes(data)


def main() -> None:
    traces = sorted(Path(sys.argv[1]).glob("*.trace"))
    seeds = Path(sys.argv[2])
    hosts = []
    for trace in traces:
        rows = read_trace(trace)
        host = [(ms, data) for direction, ms, data in rows if direction == ">"]
        if host:
            hosts.append(host)

    seen_requests = set()
    for host in hosts:
        steps = ctaphid_steps(host)
        for start in range(0, len(steps), REPORTS_PER_SEED):
            write(seeds / "ctaphid", b"".join(steps[start : start + REPORTS_PER_SEED]))

        ops, pin_ops = [], []
        for cmd, payload in messages([r for _, r in host]):
            if cmd == CMD_CBOR:
                selector, op = 0, 8
            elif cmd == CMD_MSG:
                selector, op = 1, 9
            else:
                continue
            if (selector, payload) not in seen_requests:
                seen_requests.add((selector, payload))
                write(seeds / "ctap2_request", bytes([selector]) + payload)
            ops.append(bytes([op]) + len(payload).to_bytes(2, "big") + payload + b"\x00")
            if cmd == CMD_CBOR:
                pin_ops.append(b"\x09" + len(payload).to_bytes(2, "big") + payload)
        for start in range(0, len(ops), REQUESTS_PER_PROGRAM):
            write(seeds / "authenticator", b"\x00" + b"".join(ops[start : start + REQUESTS_PER_PROGRAM]))
        if any(op[3] == 0x06 for op in pin_ops):
            for start in range(0, len(pin_ops), REQUESTS_PER_PROGRAM):
                write(seeds / "client_pin", b"".join(pin_ops[start : start + REQUESTS_PER_PROGRAM]))

    # Two clients at once: connections interleaved report by report.
    for a, b in zip(hosts[::2], hosts[1::2]):
        mixed = [r for pair in zip(a, b) for r in pair][:REPORTS_PER_SEED]
        write(seeds / "ctaphid", b"".join(ctaphid_steps(mixed)))

    for target in ("ctaphid", "ctap2_request", "authenticator", "client_pin"):
        count = len(list((seeds / target).glob("*")))
        print(f"{target}: {count} seeds")


if __name__ == "__main__":
    main()

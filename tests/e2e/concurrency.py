#!/usr/bin/env python3
"""Two clients on one fido2d at once, and CANCEL during a presence wait (CTAP 2.1 §11.2.5.1,
§11.2.9.1.5), driven by python-fido2.

Usage: python3 tests/e2e/concurrency.py TARGET PRESENCE_FIFO

TARGET is a UDP port or a /dev/hidraw path (see targets.py). fido2d must run with
`--presence terminal` and read its stdin from the FIFO PRESENCE_FIFO: this script answers the
presence prompts by writing "y" or "n" lines into it, as the person at the terminal would.

Prints "PASS name" / "FAIL name: reason" per check and "N passed, M failed"; exits 1 on a
failure.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from typing import Callable

from fido2.attestation import PackedAttestation
from fido2.ctap import STATUS, CtapError
from fido2.ctap2 import Ctap2
from fido2.hid import CTAPHID

import targets

TARGET = ""
FIFO = ""
RUN = os.urandom(3).hex()
# How long a presence wait may take to show up, and a cancel to be answered.
WAIT = 15.0


class CheckFailed(Exception):
    pass


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def answer_presence(line: str) -> None:
    """Types an answer at fido2d's terminal prompt."""
    with open(FIFO, "w") as fifo:
        fifo.write(line + "\n")


class Registration:
    """makeCredential on its own thread, so the test can act while it waits for presence."""

    def __init__(self, device, name: str):
        self.ctap2 = Ctap2(device)
        self.cancel = threading.Event()
        self.presence_needed = threading.Event()
        self.client_data_hash = os.urandom(32)
        self.rp_id = f"{name}.{RUN}.fido2d.test"
        self.result = None
        self.error: BaseException | None = None
        self.finished_at = 0.0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _on_keepalive(self, status: STATUS) -> None:
        if status == STATUS.UPNEEDED:
            self.presence_needed.set()

    def _run(self) -> None:
        try:
            self.result = self.ctap2.make_credential(
                self.client_data_hash,
                {"id": self.rp_id, "name": self.rp_id},
                {"id": os.urandom(16), "name": "concurrency"},
                [{"type": "public-key", "alg": -7}],
                event=self.cancel,
                on_keepalive=self._on_keepalive,
            )
        except BaseException as e:  # reported by the check
            self.error = e
        finally:
            self.finished_at = time.monotonic()

    def wait_for_presence_prompt(self) -> None:
        expect(
            self.presence_needed.wait(WAIT),
            f"no KEEPALIVE(UP_NEEDED) within {WAIT} s (error: {self.error!r})",
        )
        # fido2d drops answers typed before its prompt: let the prompt be printed first.
        time.sleep(0.3)

    def join(self) -> None:
        self.thread.join(WAIT)
        expect(not self.thread.is_alive(), f"makeCredential still running after {WAIT} s")


def busy_call(device, cmd: int, data: bytes) -> bytes:
    """One CTAPHID request that reports CHANNEL_BUSY instead of retrying.

    python-fido2 retries on ERR_CHANNEL_BUSY until the call's event is set; with the event set
    up front it raises the BUSY error at once (its extra CANCELs on this idle channel are
    ignored by the device, as §11.2.9.1.5 requires)."""
    stop_retrying = threading.Event()
    stop_retrying.set()
    return device.call(cmd, data, event=stop_retrying)


def expect_ctap_error(code: CtapError.ERR, fn: Callable, *args) -> None:
    try:
        fn(*args)
    except CtapError as e:
        expect(e.code == code, f"expected {code.name}, got {CtapError(e.code)}")
    else:
        raise CheckFailed(f"expected {code.name}, but the command succeeded")


CHECKS: list[Callable[[], None]] = []


def check(fn: Callable[[], None]) -> Callable[[], None]:
    CHECKS.append(fn)
    return fn


@check
def second_client_is_busy_while_presence_is_pending_then_cancel_ends_the_wait():
    first = targets.open_shared_device(TARGET)
    second = targets.open_shared_device(TARGET)
    try:
        pending = Registration(first, "cancelled")
        pending.wait_for_presence_prompt()

        # Another channel: every message is refused with ERR_CHANNEL_BUSY (§11.2.5.1)...
        expect_ctap_error(CtapError.ERR.CHANNEL_BUSY, busy_call, second, CTAPHID.CBOR, b"\x04")
        expect_ctap_error(CtapError.ERR.CHANNEL_BUSY, busy_call, second, CTAPHID.PING, b"hi")
        # ...but a new client can still get a channel: INIT on the broadcast channel is served.
        third = targets.open_shared_device(TARGET)
        third.close()
        expect(pending.thread.is_alive(), f"the pending request ended: {pending.error!r}")

        # CANCEL on the waiting channel ends the wait with CTAP2_ERR_KEEPALIVE_CANCEL.
        cancelled_at = time.monotonic()
        pending.cancel.set()
        pending.join()
        expect(isinstance(pending.error, CtapError), f"not a CTAP error: {pending.error!r}")
        expect(
            pending.error.code == CtapError.ERR.KEEPALIVE_CANCEL,
            f"expected KEEPALIVE_CANCEL, got {pending.error}",
        )
        latency = pending.finished_at - cancelled_at
        print(f"    cancel answered after {latency * 1000:.0f} ms", flush=True)

        # The device is free again for the other client, at once.
        info = Ctap2(second).get_info()
        expect("FIDO_2_0" in info.versions, f"versions {info.versions}")
    finally:
        first.close()
        second.close()


@check
def a_retrying_client_is_served_once_the_other_request_ends():
    first = targets.open_shared_device(TARGET)
    second = targets.open_shared_device(TARGET)
    busy_warnings = []

    class Collect(logging.Handler):
        def emit(self, record):
            if "busy" in record.getMessage().lower():
                busy_warnings.append(record)

    handler = Collect()
    logging.getLogger("fido2.hid").addHandler(handler)
    try:
        pending = Registration(first, "denied")
        pending.wait_for_presence_prompt()
        waiter_result = {}

        def get_info():
            try:
                waiter_result["info"] = Ctap2(second).get_info()
            except BaseException as e:
                waiter_result["error"] = e

        waiter = threading.Thread(target=get_info, daemon=True)
        waiter.start()
        time.sleep(0.5)
        expect(waiter.is_alive(), f"getInfo finished while the device was busy: {waiter_result}")
        expect(busy_warnings, "python-fido2 saw no CHANNEL_BUSY while retrying")

        # The person refuses: OPERATION_DENIED for the first, then the second gets its answer.
        answer_presence("n")
        pending.join()
        expect(
            isinstance(pending.error, CtapError)
            and pending.error.code == CtapError.ERR.OPERATION_DENIED,
            f"expected OPERATION_DENIED, got {pending.error!r}",
        )
        waiter.join(WAIT)
        expect("info" in waiter_result, f"getInfo after the wait: {waiter_result}")
    finally:
        logging.getLogger("fido2.hid").removeHandler(handler)
        first.close()
        second.close()


@check
def an_approved_request_after_a_cancelled_one_is_signed():
    # The answer "y" is given only now: an earlier prompt that was cancelled must not have
    # consumed or kept anything.
    device = targets.open_shared_device(TARGET)
    try:
        pending = Registration(device, "approved")
        pending.wait_for_presence_prompt()
        answer_presence("y")
        pending.join()
        expect(pending.error is None, f"makeCredential failed: {pending.error!r}")
        att = pending.result
        expect(att.fmt == "packed", f"fmt {att.fmt}")
        PackedAttestation().verify(att.att_stmt, att.auth_data, pending.client_data_hash)
    finally:
        device.close()


def main(argv: list[str]) -> int:
    global TARGET, FIFO
    problem = "missing arguments" if len(argv) != 3 else targets.check_target(argv[1])
    if not problem and not os.path.exists(argv[2]):
        problem = f"{argv[2]} does not exist"
    if problem:
        print(f"usage: {argv[0]} PORT|/dev/hidrawN PRESENCE_FIFO ({problem})", file=sys.stderr)
        return 2
    TARGET, FIFO = argv[1], argv[2]
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    print(f"fido2d on {targets.describe(TARGET)}", flush=True)
    passed = failed = 0
    for fn in CHECKS:
        try:
            fn()
        except Exception as e:
            failed += 1
            reason = str(e) if isinstance(e, CheckFailed) else f"{type(e).__name__}: {e}"
            print(f"FAIL {fn.__name__}: {reason}", flush=True)
            traceback.print_exc(file=sys.stderr)
        else:
            passed += 1
            print(f"PASS {fn.__name__}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""The PIN retry count against SIGKILL, for tests/tests/pin_kill.rs.

Usage:
  python3 tests/e2e/pin_kill.py PORT set               sets the PIN
  python3 tests/e2e/pin_kill.py PORT round PID DELAY   prints "found N" (pinRetries as the
      restarted daemon reports them), gets a token with the right PIN (all retries back),
      prints "before N", then sends getPinToken with a wrong PIN and DELAY seconds after
      sending it kills PID (fido2d) with SIGKILL; prints "answered CODE" if the answer came
      first, else "unanswered"
  python3 tests/e2e/pin_kill.py PORT retries           prints "found N" (pinRetries)
  python3 tests/e2e/pin_kill.py PORT time              prints the seconds a wrong-PIN
      getPinToken takes (key agreement included)

Everything goes through python-fido2's ClientPin (PIN/UV auth protocol 2).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.pin import ClientPin, PinProtocolV2

from udp_hid import open_udp_device

PIN = "48151623"
WRONG = "00000000"


def main() -> int:
    port, phase = int(sys.argv[1]), sys.argv[2]
    dev = open_udp_device(port)
    cp = ClientPin(Ctap2(dev), PinProtocolV2())
    if phase == "set":
        cp.set_pin(PIN)
    elif phase == "retries":
        print(f"found {cp.get_pin_retries()[0]}")
    elif phase == "time":
        start = time.monotonic()
        try:
            cp.get_pin_token(WRONG)
        except CtapError:
            pass
        print(f"seconds {time.monotonic() - start:.6f}")
    elif phase == "round":
        pid, delay = int(sys.argv[3]), float(sys.argv[4])
        print(f"found {cp.get_pin_retries()[0]}", flush=True)
        cp.get_pin_token(PIN)
        print(f"before {cp.get_pin_retries()[0]}", flush=True)
        outcome: list[str] = []

        def wrong() -> None:
            try:
                cp.get_pin_token(WRONG)
                outcome.append("answered 0")
            except CtapError as e:
                outcome.append(f"answered {int(e.code)}")
            except Exception:  # the daemon died first: no answer
                outcome.append("unanswered")

        thread = threading.Thread(target=wrong, daemon=True)
        thread.start()
        time.sleep(delay)
        os.kill(pid, signal.SIGKILL)
        thread.join(1.0)
        print(outcome[0] if outcome and outcome[0].startswith("answered") else "unanswered")
    else:
        print(f"unknown phase {phase}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

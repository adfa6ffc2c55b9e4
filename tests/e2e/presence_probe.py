#!/usr/bin/env python3
"""One authenticatorMakeCredential against fido2d over UDP, to exercise presence.

Usage: python3 tests/e2e/presence_probe.py PORT [--cancel-after SECONDS] [--rk]
                                           [--rp RP_ID] [--user NAME]

Prints the keepalive statuses seen ("keepalive=UPNEEDED" once) and the outcome
as "status=0x00" (success) or "status=0xNN" (the CTAP error code), then exits 0.
With --cancel-after, python-fido2 sends CTAPHID_CANCEL that many seconds after
the request, the way a browser withdraws a request.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading

from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2

from udp_hid import open_udp_device


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--cancel-after", type=float)
    parser.add_argument("--rp", default="presence.fido2d.test")
    parser.add_argument("--user", default="alice@example.com")
    parser.add_argument("--rk", action="store_true", help="a discoverable credential")
    args = parser.parse_args()

    # The presence wait can last as long as the daemon's timeout: keepalives
    # arrive every 100 ms meanwhile, so a generous read timeout is safe.
    dev = open_udp_device(args.port, timeout=60)
    cancel = threading.Event()
    if args.cancel_after is not None:
        threading.Timer(args.cancel_after, cancel.set).start()
    seen: list[str] = []

    def on_keepalive(status: int) -> None:
        name = {1: "PROCESSING", 2: "UPNEEDED"}.get(status, str(status))
        if name not in seen:
            seen.append(name)
            print(f"keepalive={name}", flush=True)

    try:
        Ctap2(dev).make_credential(
            os.urandom(32),
            {"id": args.rp, "name": "Presence test"},
            {"id": args.user.encode(), "name": args.user},
            [{"type": "public-key", "alg": -7}],
            options={"rk": True} if args.rk else None,
            event=cancel,
            on_keepalive=on_keepalive,
        )
        print("status=0x00", flush=True)
    except CtapError as err:
        print(f"status=0x{int(err.code):02x}", flush=True)
    finally:
        dev.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

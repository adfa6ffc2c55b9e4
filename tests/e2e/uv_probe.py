#!/usr/bin/env python3
"""Built-in user verification against fido2d over UDP, through python-fido2's own classes.

Usage: python3 tests/e2e/uv_probe.py PORT ACTION
  info        prints "uv=<options.uv> modality=<uvModality> attempts=<...>"
  retries     prints "retries=N" (getUVRetries)
  token       getPinUvAuthTokenUsingUvWithPermissions (mc, rpId uv.fido2d.test):
              prints "token=ok" or "status=0xNN"
  register    makeCredential with options {uv: true}: prints "flags=0xNN" or "status=0xNN"

The person's answers come from the agent the test runs; this script only plays the platform.
"""

from __future__ import annotations

import os
import sys

from fido2.ctap import CtapError
from fido2.ctap2 import ClientPin, Ctap2

from udp_hid import open_udp_device

RP = "uv.fido2d.test"


def main() -> int:
    port, action = int(sys.argv[1]), sys.argv[2]
    dev = open_udp_device(port, timeout=60)
    ctap = Ctap2(dev)
    try:
        if action == "info":
            info = ctap.get_info()
            print(
                f"uv={info.options.get('uv')} modality={info.uv_modality} "
                f"attempts={info.preferred_platform_uv_attempts}"
            )
        elif action == "retries":
            print(f"retries={ClientPin(ctap).get_uv_retries()}")
        elif action == "token":
            ClientPin(ctap).get_uv_token(ClientPin.PERMISSION.MAKE_CREDENTIAL, RP)
            print("token=ok")
        elif action == "register":
            response = ctap.make_credential(
                os.urandom(32),
                {"id": RP, "name": "UV test"},
                {"id": b"uv-user", "name": "alice@example.com"},
                [{"type": "public-key", "alg": -7}],
                options={"uv": True},
            )
            print(f"flags=0x{response.auth_data.flags:02x}")
        else:
            raise SystemExit(f"unknown action {action}")
    except CtapError as err:
        print(f"status=0x{int(err.code):02x}")
    finally:
        dev.close()
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

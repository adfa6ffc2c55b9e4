#!/usr/bin/env python3
"""A full session against a running fido2d that prints the secrets it involved, for
tests/tests/secrets.rs to search the daemon's logs and state directory for.

Usage: python3 tests/e2e/secrets.py PORT

Sets a PIN, gets pinUvAuthTokens with both PIN/UV auth protocols (keeping the shared
secrets python-fido2 agreed on), registers with hmac-secret and gets assertions with two
salts (UV, through python-fido2's Fido2Client), then a wrong PIN. Prints "pin PIN", then
"hex NAME HEX" for every other secret. fido2d must serve CTAPHID over UDP on
127.0.0.1:PORT with user presence auto-approved.
"""

from __future__ import annotations

import os
import sys

from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.extensions import HmacSecretExtension
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.server import Fido2Server
from fido2.utils import sha256, websafe_decode
from fido2.webauthn import ResidentKeyRequirement, UserVerificationRequirement

from udp_hid import open_udp_device

PIN = "secret-" + os.urandom(4).hex()
RP = "secrets.example"


class Pin(UserInteraction):
    def request_pin(self, permissions, rp_id):
        return PIN


def main() -> int:
    port = int(sys.argv[1])
    found: dict[str, str] = {"pin_hash": sha256(PIN.encode())[:16].hex()}
    with open_udp_device(port) as dev:
        ctap = Ctap2(dev)
        ClientPin(ctap).set_pin(PIN)
        for name, protocol in [("v1", PinProtocolV1()), ("v2", PinProtocolV2())]:
            cp = ClientPin(ctap, protocol)
            _, shared = cp._get_shared_secret()
            found[f"shared_secret_{name}"] = shared.hex()
            token = cp.get_pin_token(PIN, ClientPin.PERMISSION.GET_ASSERTION, RP)
            found[f"token_{name}"] = token.hex()

        ext = [HmacSecretExtension(allow_hmac_secret=True)]
        client = Fido2Client(
            dev,
            client_data_collector=DefaultClientDataCollector(f"https://{RP}"),
            user_interaction=Pin(),
            extensions=ext,
        )
        srv = Fido2Server({"id": RP, "name": RP}, attestation="none")
        options, state = srv.register_begin(
            {"id": os.urandom(16), "name": "sam", "displayName": "Sam"},
            user_verification=UserVerificationRequirement.REQUIRED,
            resident_key_requirement=ResidentKeyRequirement.REQUIRED,
            extensions={"hmacCreateSecret": True},
        )
        cred = srv.register_complete(state, client.make_credential(options.public_key)).credential_data
        salt1, salt2 = os.urandom(32), os.urandom(32)
        found["salt1"], found["salt2"] = salt1.hex(), salt2.hex()
        for uv in [UserVerificationRequirement.REQUIRED, UserVerificationRequirement.DISCOURAGED]:
            options, state = srv.authenticate_begin(
                [cred],
                user_verification=uv,
                extensions={"hmacGetSecret": {"salt1": salt1, "salt2": salt2}},
            )
            response = client.get_assertion(options.public_key).get_response(0)
            srv.authenticate_complete(state, [cred], response)
            out = response.client_extension_results["hmacGetSecret"]
            for n in ("output1", "output2"):
                value = out[n]
                value = websafe_decode(value) if isinstance(value, str) else value
                found[f"hmac_{n}_{uv.value}"] = value.hex()

        try:
            ClientPin(ctap).get_pin_token("wrong-" + PIN)
            print("a wrong PIN got a token", file=sys.stderr)
            return 1
        except CtapError as e:
            if e.code != CtapError.ERR.PIN_INVALID:
                raise
    print(f"pin {PIN}")
    for name, value in found.items():
        print(f"hex {name} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

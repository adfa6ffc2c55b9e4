#!/usr/bin/env python3
"""The PIN and the counters across daemon restarts, state directories put back from older
copies and state directories of older releases: for tests/tests/pin_state.rs.

Usage (fido2d on 127.0.0.1:PORT over UDP, presence auto-approved):
  pin_state.py PORT make             sets the PIN, registers a discoverable and a
      non-discoverable credential (hmac-secret) at migration.example, signs in once, spends
      one wrong PIN; prints "resident HEX", "plain HEX", "counter N", "hmac OUTPUT" (the
      UV output for a fixed salt, as python-fido2 gives it) and "retries N"
  pin_state.py PORT check RESIDENT PLAIN
                                     prints "retries N", then gets a PIN token ("token ok" or
      "token CODE"), "credentials N" (discoverable ones, by credential management),
      "resident-counter N", "plain-counter N" and "hmac OUTPUT" (the same salt, with UV)
  pin_state.py PORT sign N HEX       N sign-ins (up, no UV) with credential HEX at
      migration.example; prints "counter N" for each
  pin_state.py PORT wrong K          K token requests with a wrong PIN; "answer CODE" each
  pin_state.py PORT retries          prints "retries N"
  pin_state.py PORT token            "token ok", or "token CODE" with the CTAP error code

Everything goes through python-fido2's own classes; this script does no CTAP crypto.
"""

from __future__ import annotations

import os
import sys

from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.credman import CredentialManagement
from fido2.ctap2.extensions import HmacSecretExtension
from fido2.ctap2.pin import ClientPin, PinProtocolV2
from fido2.server import Fido2Server
from fido2.utils import sha256
from fido2.webauthn import ResidentKeyRequirement, UserVerificationRequirement

from udp_hid import open_udp_device

PIN = "248163"
WRONG = "000000"
RP_ID = "migration.example"
SALT = b"\x11" * 32
PERM = ClientPin.PERMISSION


class PinInteraction(UserInteraction):
    def request_pin(self, permissions, rp_id):
        return PIN


def client(dev) -> Fido2Client:
    return Fido2Client(
        dev,
        client_data_collector=DefaultClientDataCollector(f"https://{RP_ID}"),
        user_interaction=PinInteraction(),
        extensions=[HmacSecretExtension(allow_hmac_secret=True)],
    )


def server() -> Fido2Server:
    return Fido2Server({"id": RP_ID, "name": RP_ID}, attestation="none")


def register(dev, name: str, rk: bool):
    srv = server()
    options, state = srv.register_begin(
        {"id": os.urandom(16), "name": name, "displayName": name},
        user_verification=UserVerificationRequirement.REQUIRED,
        resident_key_requirement=(
            ResidentKeyRequirement.REQUIRED if rk else ResidentKeyRequirement.DISCOURAGED
        ),
        extensions={"hmacCreateSecret": True},
    )
    response = client(dev).make_credential(options.public_key)
    return srv.register_complete(state, response).credential_data


def sign(ctap2: Ctap2, credential_id: bytes) -> int:
    allow = [{"type": "public-key", "id": credential_id}]
    response = ctap2.get_assertion(RP_ID, os.urandom(32), allow)
    return response.auth_data.counter


def hmac_with_uv(dev, credential_id: bytes) -> str:
    srv = server()
    options, _ = srv.authenticate_begin(
        [],
        user_verification=UserVerificationRequirement.REQUIRED,
        extensions={"hmacGetSecret": {"salt1": SALT}},
    )
    public_key = dict(options.public_key)
    public_key["allowCredentials"] = [{"type": "public-key", "id": credential_id}]
    selection = client(dev).get_assertion(public_key)
    output = selection.get_response(0).client_extension_results["hmacGetSecret"]["output1"]
    return output if isinstance(output, str) else output.hex()


def retries(ctap2: Ctap2) -> int:
    return ClientPin(ctap2, PinProtocolV2()).get_pin_retries()[0]


def token(ctap2: Ctap2, pin: str = PIN) -> str:
    try:
        ClientPin(ctap2, PinProtocolV2()).get_pin_token(pin, PERM.CREDENTIAL_MGMT)
        return "ok"
    except CtapError as e:
        return str(int(e.code))


def main(argv: list[str]) -> int:
    port, phase, args = int(argv[1]), argv[2], argv[3:]
    with open_udp_device(port) as dev:
        ctap2 = Ctap2(dev)
        if phase == "make":
            ClientPin(ctap2, PinProtocolV2()).set_pin(PIN)
            resident = register(dev, "alice", rk=True)
            plain = register(dev, "bob", rk=False)
            print(f"resident {resident.credential_id.hex()}")
            print(f"plain {plain.credential_id.hex()}")
            print(f"counter {sign(ctap2, resident.credential_id)}")
            print(f"hmac {hmac_with_uv(dev, plain.credential_id)}")
            token(ctap2, WRONG)
            print(f"retries {retries(ctap2)}")
        elif phase == "check":
            resident, plain = (bytes.fromhex(a) for a in args)
            print(f"retries {retries(ctap2)}", flush=True)
            print(f"token {token(ctap2)}", flush=True)
            protocol = PinProtocolV2()
            pin_token = ClientPin(ctap2, protocol).get_pin_token(PIN, PERM.CREDENTIAL_MGMT)
            cm = CredentialManagement(ctap2, protocol, pin_token)
            print(f"credentials {len(cm.enumerate_creds(sha256(RP_ID.encode())))}")
            print(f"resident-counter {sign(ctap2, resident)}")
            print(f"plain-counter {sign(ctap2, plain)}")
            print(f"hmac {hmac_with_uv(dev, plain)}")
        elif phase == "sign":
            count, credential_id = int(args[0]), bytes.fromhex(args[1])
            for _ in range(count):
                print(f"counter {sign(ctap2, credential_id)}", flush=True)
        elif phase == "wrong":
            for _ in range(int(args[0])):
                print(f"answer {token(ctap2, WRONG)}", flush=True)
        elif phase == "retries":
            print(f"retries {retries(ctap2)}")
        elif phase == "token":
            print(f"token {token(ctap2)}")
        else:
            print(f"unknown phase {phase}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Credentials that outlive a restart, registered and used through python-fido2.

Usage: python3 tests/e2e/persistence.py PORT register STATE.json
       python3 tests/e2e/persistence.py PORT authenticate STATE.json

`register` makes, through python-fido2's client and relying-party stacks, a
non-discoverable and a discoverable ES256 credential (WebAuthn) and a U2F
registration, and writes what an RP keeps of them to STATE.json.
`authenticate` reads STATE.json and signs in with each of them, verified by the
same RP code; run it after restarting fido2d (and its TPM) to show that every
credential survived.  fido2d must auto-approve user presence.

Prints "PASS name" or "FAIL name: reason" per check, then "N passed, M failed";
exits 1 if any check failed.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap1 import Ctap1
from fido2.server import Fido2Server
from fido2.utils import sha256
from fido2.webauthn import (
    AttestedCredentialData,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from ceremonies import with_presence
from udp_hid import open_udp_device

UV = UserVerificationRequirement.DISCOURAGED
ES256_ALG = -7


def server_for(rp_id: str) -> Fido2Server:
    server = Fido2Server({"id": rp_id, "name": rp_id}, attestation="none")
    return server


def client_for(dev, rp_id: str) -> Fido2Client:
    return Fido2Client(
        dev,
        client_data_collector=DefaultClientDataCollector(f"https://{rp_id}"),
        user_interaction=UserInteraction(),
    )


def register(port: int, path: str) -> list[tuple[str, str | None]]:
    rp_id = f"persist-{os.urandom(3).hex()}.fido2d.test"
    server = server_for(rp_id)
    state = {"rp_id": rp_id, "webauthn": [], "u2f": None}
    results = []
    dev = open_udp_device(port)
    try:
        client = client_for(dev, rp_id)
        for discoverable in (False, True):
            name = f"register_{'discoverable' if discoverable else 'non_discoverable'}"
            account = {"id": os.urandom(16), "name": name, "displayName": name}
            options, reg_state = server.register_begin(
                account,
                user_verification=UV,
                resident_key_requirement=(
                    ResidentKeyRequirement.REQUIRED
                    if discoverable
                    else ResidentKeyRequirement.DISCOURAGED
                ),
            )
            response = client.make_credential(options.public_key)
            auth_data = server.register_complete(reg_state, response)
            cred = auth_data.credential_data
            state["webauthn"].append(
                {
                    "credential": bytes(cred).hex(),
                    "user_id": account["id"].hex(),
                    "discoverable": discoverable,
                }
            )
            results.append((name, None))
        app_param = sha256(rp_id.encode())
        client_param = sha256(b"persistence registration")
        reg = with_presence(Ctap1(dev).register, client_param, app_param)
        reg.verify(app_param, client_param)
        state["u2f"] = {
            "app_param": app_param.hex(),
            "key_handle": reg.key_handle.hex(),
            "public_key": reg.public_key.hex(),
        }
        results.append(("register_u2f", None))
    finally:
        dev.close()
    with open(path, "w") as f:
        json.dump(state, f)
    return results


def authenticate(port: int, path: str) -> list[tuple[str, str | None]]:
    with open(path) as f:
        state = json.load(f)
    rp_id = state["rp_id"]
    server = server_for(rp_id)
    results = []
    dev = open_udp_device(port)
    try:
        client = client_for(dev, rp_id)
        for entry in state["webauthn"]:
            cred = AttestedCredentialData(bytes.fromhex(entry["credential"]))
            discoverable = entry["discoverable"]
            name = f"authenticate_{'discoverable' if discoverable else 'non_discoverable'}"
            try:
                options, auth_state = server.authenticate_begin(
                    None if discoverable else [cred], user_verification=UV
                )
                selection = client.get_assertion(options.public_key)
                response = selection.get_response(0)
                server.authenticate_complete(auth_state, [cred], response)
                if response.raw_id != cred.credential_id:
                    raise AssertionError("an assertion for another credential")
                if discoverable:
                    handle = response.response.user_handle
                    if handle != bytes.fromhex(entry["user_id"]):
                        raise AssertionError(f"userHandle {handle!r}")
                results.append((name, None))
            except Exception as e:  # noqa: BLE001 - reported per check
                traceback.print_exc(file=sys.stderr)
                results.append((name, f"{type(e).__name__}: {e}"))
        u2f = state["u2f"]
        try:
            app_param = bytes.fromhex(u2f["app_param"])
            client_param = sha256(b"persistence authentication")
            sig = with_presence(
                Ctap1(dev).authenticate,
                client_param,
                app_param,
                bytes.fromhex(u2f["key_handle"]),
            )
            sig.verify(app_param, client_param, bytes.fromhex(u2f["public_key"]))
            results.append(("authenticate_u2f", None))
        except Exception as e:  # noqa: BLE001 - reported per check
            traceback.print_exc(file=sys.stderr)
            results.append(("authenticate_u2f", f"{type(e).__name__}: {e}"))
    finally:
        dev.close()
    return results


def main(argv: list[str]) -> int:
    if len(argv) != 4 or not argv[1].isdigit() or argv[2] not in ("register", "authenticate"):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    port, command, path = int(argv[1]), argv[2], argv[3]
    try:
        results = (register if command == "register" else authenticate)(port, path)
    except Exception as e:  # noqa: BLE001 - the whole step failed
        traceback.print_exc(file=sys.stderr)
        results = [(command, f"{type(e).__name__}: {e}")]
    failed = 0
    for name, failure in results:
        if failure is None:
            print(f"PASS {name}", flush=True)
        else:
            failed += 1
            print(f"FAIL {name}: {failure}", flush=True)
    print(f"{len(results) - failed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

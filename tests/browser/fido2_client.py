"""The matrix cells that no browser can run as they are (see matrix.py), through python-fido2's
WebAuthn client (Fido2Client over its own hidraw connection), against the same relying party.

The relying party's options go in as WebAuthn JSON (what the page would pass to
parseCreationOptionsFromJSON), and the client's response comes back as WebAuthn JSON (what
credential.toJSON() gives), so py_webauthn verifies it exactly as it verifies a browser's.
"""

from __future__ import annotations

import os
import sys
import time

from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.webauthn import PublicKeyCredentialCreationOptions, PublicKeyCredentialRequestOptions

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e"))
import targets  # noqa: E402  (tests/e2e/targets.py: a hidraw node or a UDP port)

import matrix  # noqa: E402

CLIENT = "python-fido2"


class TypesThePin(UserInteraction):
    def request_pin(self, permissions, rp_id):
        return matrix.PIN

    def request_uv(self, permissions, rp_id):
        return True


def run(args, cells, relying_party):
    from run_matrix import steps_for

    device = targets.open_device(args.device)
    print(f"client: python-fido2 Fido2Client on {targets.describe(args.device)}", flush=True)
    for cell in cells:
        client = Fido2Client(
            device,
            client_data_collector=DefaultClientDataCollector(relying_party.origin(cell)),
            user_interaction=TypesThePin(),
        )

        def ceremony(step: str) -> bool:
            t0 = time.monotonic()
            try:
                if step == "register":
                    options = relying_party.registration_options(cell, CLIENT)
                    response = client.make_credential(PublicKeyCredentialCreationOptions.from_dict(options))
                    credential = dict(response)
                    verify = lambda: relying_party.verify_registration(cell, CLIENT, credential)  # noqa: E731
                else:
                    options = relying_party.authentication_options(cell, step, CLIENT)
                    selection = client.get_assertion(PublicKeyCredentialRequestOptions.from_dict(options))
                    count = len(selection.get_assertions())
                    if count != 1:
                        raise RuntimeError(f"{count} credentials for one user, expected 1")
                    credential = dict(selection.get_response(0))
                    verify = lambda: relying_party.verify_authentication(cell, step, CLIENT, credential)  # noqa: E731
            except Exception as e:  # the client's refusal is the verdict
                relying_party.record(cell, step, CLIENT, False, f"python-fido2 said {type(e).__name__}: {e}")
                return False
            try:
                detail = verify()
            except Exception as e:
                relying_party.record(cell, step, CLIENT, False, f"{type(e).__name__}: {e}")
                return False
            relying_party.record(cell, step, CLIENT, True, detail)
            print(f"  {cell.name} {step}: ok in {time.monotonic() - t0:.2f} s", flush=True)
            return True

        if ceremony("register"):
            for step in steps_for(cell, relying_party, CLIENT):
                ceremony(step)

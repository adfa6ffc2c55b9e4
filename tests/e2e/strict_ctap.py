#!/usr/bin/env python3
"""Two programs on one key: what one channel began, another cannot continue; and nothing
secret without the person's gesture. Driven by python-fido2's own classes.

Usage: python3 tests/e2e/strict_ctap.py TARGET
  TARGET: a UDP port (fido2d --transport udp) or /dev/hidrawN (fido2d --transport uhid).
The key must be fresh (no PIN) and approve presence by itself (a test mode).

Client A and client B are two CtapHidDevices, each with its own CTAPHID channel (and, over
UDP, its own socket), as two programs on one machine would be. Each check is one attack of
B on A's state, with the status a strict authenticator answers:
- getNextAssertion after A's getAssertion (CTAP 2.1 s6.3): NOT_ALLOWED, and A's batch is over;
- enumerateCredentialsGetNextCredential after A's Begin (s6.8): NOT_ALLOWED;
- A's pinUvAuthToken after a command of B (fido2d binds the token to its channel): PIN_AUTH_INVALID;
- getAssertion with hmac-secret and "up": false (s12.5): UNSUPPORTED_OPTION, for anyone;
- an allowList of only unknown types (s6.2.2 step 7): NO_CREDENTIALS, never a discovery.

Prints "PASS name" / "FAIL name: reason" per check, then "N passed, M failed".
"""

from __future__ import annotations

import os
import sys
import traceback

from fido2.cose import ES256
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.credman import CredentialManagement
from fido2.ctap2.pin import ClientPin, PinProtocolV2
from fido2.utils import sha256

from checks import CheckFailed, expect, expect_ctap_error
from targets import check_target, open_shared_device

PIN = "4321"
RUN = os.urandom(3).hex()
RP = f"strict.{RUN}.fido2d.test"
CDH = sha256(b"client data of the strict test")
ERR = CtapError.ERR
PERM = ClientPin.PERMISSION


class Key:
    """The two clients, the PIN and two discoverable credentials at RP (made once)."""

    def __init__(self, target: str):
        self.dev_a = open_shared_device(target)
        self.dev_b = open_shared_device(target)
        self.a = Ctap2(self.dev_a)
        self.b = Ctap2(self.dev_b)
        expect(
            self.dev_a._channel_id != self.dev_b._channel_id,
            "the two clients share a channel",
        )
        self.protocol = PinProtocolV2()
        self.pin_a = ClientPin(self.a, self.protocol)
        self.pin_a.set_pin(PIN)
        self.credentials = []
        for name in ("alice", "bob"):
            token = self.token(PERM.MAKE_CREDENTIAL, RP)
            response = self.a.make_credential(
                CDH,
                {"id": RP, "name": RP},
                {"id": name.encode(), "name": name, "displayName": name.title()},
                [{"type": "public-key", "alg": ES256.ALGORITHM}],
                options={"rk": True},
                extensions={"hmac-secret": True},
                pin_uv_param=self.protocol.authenticate(token, CDH),
                pin_uv_protocol=self.protocol.VERSION,
            )
            self.credentials.append(response.auth_data.credential_data.credential_id)

    def token(self, permissions, rp_id=None) -> bytes:
        return self.pin_a.get_pin_token(PIN, permissions, rp_id)

    def uv_discovery(self):
        """A's getAssertion with a PIN token: both accounts, one left for getNextAssertion."""
        token = self.token(PERM.GET_ASSERTION, RP)
        first = self.a.get_assertion(
            RP,
            CDH,
            pin_uv_param=self.protocol.authenticate(token, CDH),
            pin_uv_protocol=self.protocol.VERSION,
        )
        expect(first.number_of_credentials == 2, f"count {first.number_of_credentials}")
        expect(first.auth_data.flags & 0x04, "the first assertion is user-verified")
        return first


def get_next_assertion_from_another_channel(key: Key) -> None:
    key.uv_discovery()
    expect_ctap_error(ERR.NOT_ALLOWED, key.b.get_next_assertion)
    expect_ctap_error(ERR.NOT_ALLOWED, key.a.get_next_assertion)
    # Undisturbed, A gets its second account, user-verified, with the user's names.
    key.uv_discovery()
    second = key.a.get_next_assertion()
    expect(second.auth_data.flags & 0x04, "the batch keeps its UV flag")
    expect(second.user.get("name") in ("alice", "bob"), f"user {second.user}")


def credential_enumeration_from_another_channel(key: Key) -> None:
    token = key.token(PERM.CREDENTIAL_MGMT)
    credman = CredentialManagement(key.a, key.protocol, token)
    first = credman.enumerate_creds_begin(sha256(RP.encode()))
    expect(first[CredentialManagement.RESULT.TOTAL_CREDENTIALS] == 2, f"{first}")
    # B's GetNext needs no token: 0x0A {1: 5}.
    expect_ctap_error(
        ERR.NOT_ALLOWED,
        key.b.credential_mgmt,
        CredentialManagement.CMD.ENUMERATE_CREDS_NEXT,
    )
    expect_ctap_error(
        ERR.NOT_ALLOWED,
        key.a.credential_mgmt,
        CredentialManagement.CMD.ENUMERATE_CREDS_NEXT,
    )
    # Alone, A enumerates both.
    token = key.token(PERM.CREDENTIAL_MGMT)
    listed = CredentialManagement(key.a, key.protocol, token).enumerate_creds(
        sha256(RP.encode())
    )
    expect(len(listed) == 2, f"{len(listed)} credentials listed")


def a_token_ends_when_another_channel_speaks(key: Key) -> None:
    token = key.token(PERM.GET_ASSERTION, RP)
    key.b.get_info()
    expect_ctap_error(
        ERR.PIN_AUTH_INVALID,
        key.a.get_assertion,
        RP,
        CDH,
        pin_uv_param=key.protocol.authenticate(token, CDH),
        pin_uv_protocol=key.protocol.VERSION,
    )


def hmac_secret_input(ctap: Ctap2):
    """A well-formed hmac-secret input, built the way python-fido2 builds it."""
    client_pin = ClientPin(ctap, PinProtocolV2())
    key_agreement, shared = client_pin._get_shared_secret()
    salt_enc = client_pin.protocol.encrypt(shared, os.urandom(32))
    return {
        1: key_agreement,
        2: salt_enc,
        3: client_pin.protocol.authenticate(shared, salt_enc),
        4: client_pin.protocol.VERSION,
    }


def hmac_secret_without_presence(key: Key) -> None:
    allow = [{"type": "public-key", "id": key.credentials[0]}]
    for ctap in (key.b, key.a):
        expect_ctap_error(
            ERR.UNSUPPORTED_OPTION,
            ctap.get_assertion,
            RP,
            CDH,
            allow,
            extensions={"hmac-secret": hmac_secret_input(ctap)},
            options={"up": False},
        )
    # With presence the same request is answered, with the extension's output.
    answer = key.b.get_assertion(
        RP, CDH, allow, extensions={"hmac-secret": hmac_secret_input(key.b)}
    )
    expect(answer.auth_data.extensions and "hmac-secret" in answer.auth_data.extensions,
           "hmac-secret output with presence")


def an_allow_list_of_unknown_types_is_no_discovery(key: Key) -> None:
    expect_ctap_error(
        ERR.NO_CREDENTIALS,
        key.b.get_assertion,
        RP,
        CDH,
        [{"type": "future-key", "id": key.credentials[0]}],
    )


CHECKS = [
    get_next_assertion_from_another_channel,
    credential_enumeration_from_another_channel,
    a_token_ends_when_another_channel_speaks,
    hmac_secret_without_presence,
    an_allow_list_of_unknown_types_is_no_discovery,
]


def main() -> int:
    if len(sys.argv) != 2 or check_target(sys.argv[1]):
        print(__doc__, file=sys.stderr)
        return 2
    key = Key(sys.argv[1])
    passed = failed = 0
    for check in CHECKS:
        try:
            check(key)
            print(f"PASS {check.__name__}")
            passed += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported, then counted
            reason = str(e) if isinstance(e, CheckFailed) else traceback.format_exc()
            print(f"FAIL {check.__name__}: {reason}")
            failed += 1
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

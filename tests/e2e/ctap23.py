#!/usr/bin/env python3
"""The CTAP 2.2/2.3 surface of a running fido2d, checked by python-fido2 and by
this script's own decryption of getInfo's encrypted members.

Usage:
  python3 tests/e2e/ctap23.py PORT first SAVED   on a fresh key: getInfo members,
                                                 the pcmr persistent token,
                                                 encIdentifier/encCredStoreState
                                                 through it, thirdPartyPayment;
                                                 saves the token and what it read
  python3 tests/e2e/ctap23.py PORT restarted SAVED
                                                 after a restart of the daemon:
                                                 the saved persistent token still
                                                 reads, the identifier and the
                                                 state are the same

fido2d must serve CTAPHID over UDP on 127.0.0.1:PORT with user presence
auto-approved.

encIdentifier (0x19) and encCredStoreState (0x1E) are decrypted twice: with
python-fido2's Info.get_identifier / get_cred_store_state, and with this
script's own reading of CTAP 2.3 §6.4 (HKDF-SHA-256, salt 32 zero bytes, IKM
the persistentPinUvAuthToken, info the member's name, 16 bytes; AES-128-CBC,
the member being IV || ciphertext), written with `cryptography` alone, so that
neither fido2d's Rust code nor python-fido2's is the only judge.

Prints "PASS name" / "FAIL name: reason" per check, then "N passed, M failed".
"""

from __future__ import annotations

import json
import os
import sys

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.base import Info
from fido2.ctap2.config import Config
from fido2.ctap2.credman import CredentialManagement
from fido2.ctap2.pin import ClientPin, PinProtocolV2
from fido2.utils import sha256

from checks import expect, expect_ctap_error, run
from udp_hid import open_udp_device

PORT = 0
PIN = "314159"
RUN = os.urandom(3).hex()
ERR = CtapError.ERR
PERM = ClientPin.PERMISSION

ATTESTATION_FORMATS = 0x16
ENC_IDENTIFIER = 0x19
TRANSPORTS_FOR_RESET = 0x1A
PIN_COMPLEXITY_POLICY = 0x1B
MAX_PIN_LENGTH = 0x1D
ENC_CRED_STORE_STATE = 0x1E
AUTHENTICATOR_CONFIG_COMMANDS = 0x1F


def open_ctap2():
    dev = open_udp_device(PORT)
    return dev, Ctap2(dev)


def raw_info(ctap: Ctap2) -> dict:
    """getInfo as the authenticator sent it: the CBOR map with its integer keys."""
    return ctap.send_cbor(Ctap2.CMD.GET_INFO)


def decrypt_member(token: bytes, label: bytes, member: bytes) -> bytes:
    """CTAP 2.3 §6.4, from the spec's words, not from python-fido2."""
    expect(len(member) == 32, f"{label!r} is IV || one block, got {len(member)} bytes")
    key = HKDF(algorithm=hashes.SHA256(), length=16, salt=b"\0" * 32, info=label).derive(token)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(member[:16])).decryptor()
    return decryptor.update(member[16:]) + decryptor.finalize()


def read_encrypted(ctap: Ctap2, token: bytes) -> tuple[bytes, bytes]:
    """(identifier, credential store state) read through `token`, both ways, compared."""
    raw = raw_info(ctap)
    expect(ENC_IDENTIFIER in raw, "encIdentifier (0x19) present with a persistent token")
    expect(ENC_CRED_STORE_STATE in raw, "encCredStoreState (0x1E) present")
    identifier = decrypt_member(token, b"encIdentifier", raw[ENC_IDENTIFIER])
    state = decrypt_member(token, b"encCredStoreState", raw[ENC_CRED_STORE_STATE])
    info = Info.from_dict(raw)
    expect(info.get_identifier(token) == identifier, "python-fido2 reads the same identifier")
    expect(info.get_cred_store_state(token) == state, "python-fido2 reads the same state")
    return identifier, state


def pcmr_token(ctap: Ctap2) -> bytes:
    return ClientPin(ctap, PinProtocolV2()).get_pin_token(
        PIN, PERM.PERSISTENT_CREDENTIAL_MGMT
    )


def make_discoverable(ctap: Ctap2, rp_id: str, name: str, extensions=None, rk=True):
    """A (discoverable) credential through CTAP directly (a token with mc, protocol two)."""
    protocol = PinProtocolV2()
    token = ClientPin(ctap, protocol).get_pin_token(PIN, PERM.MAKE_CREDENTIAL, rp_id)
    client_data_hash = sha256(os.urandom(32))
    return ctap.make_credential(
        client_data_hash,
        {"id": rp_id, "name": rp_id},
        {"id": os.urandom(16), "name": name, "displayName": name.title()},
        [{"type": "public-key", "alg": -7}],
        extensions=extensions,
        options={"rk": rk},
        pin_uv_param=protocol.authenticate(token, client_data_hash),
        pin_uv_protocol=protocol.VERSION,
    )


def assert_with(ctap: Ctap2, rp_id: str, credential_id: bytes, extensions=None):
    protocol = PinProtocolV2()
    token = ClientPin(ctap, protocol).get_pin_token(PIN, PERM.GET_ASSERTION, rp_id)
    client_data_hash = sha256(os.urandom(32))
    return ctap.get_assertion(
        rp_id,
        client_data_hash,
        [{"type": "public-key", "id": credential_id}],
        extensions=extensions,
        pin_uv_param=protocol.authenticate(token, client_data_hash),
        pin_uv_protocol=protocol.VERSION,
    )


def first(saved: str) -> list:
    results = {}

    def get_info_members():
        _, ctap = open_ctap2()
        raw = raw_info(ctap)
        info = ctap.info
        expect(raw[ATTESTATION_FORMATS] == ["packed"], f"0x16 without 'none' {raw.get(0x16)}")
        expect("FIDO_2_3" in info.versions and "FIDO_2_1" in info.versions, f"{info.versions}")
        expect(raw[TRANSPORTS_FOR_RESET] == ["usb"], f"0x1A {raw.get(0x1A)}")
        expect(raw[PIN_COMPLEXITY_POLICY] is False, "0x1B present (supported) and off")
        expect(raw[MAX_PIN_LENGTH] == 63, f"0x1D {raw.get(0x1D)}")
        expect(raw[AUTHENTICATOR_CONFIG_COMMANDS] == [2, 3], f"0x1F {raw.get(0x1F)}")
        expect(info.options.get("perCredMgmtRO") is True, f"options {info.options}")
        expect("thirdPartyPayment" in info.extensions, f"extensions {info.extensions}")
        expect(info.max_pin_length == 63 and info.attestation_formats == ["packed"],
               "python-fido2 parses them")
        expect(len(raw[ENC_IDENTIFIER]) == 32 and len(raw[ENC_CRED_STORE_STATE]) == 32,
               "encIdentifier and encCredStoreState are there (IV || block) from the start")

    def pcmr_is_granted_alone():
        _, ctap = open_ctap2()
        ClientPin(ctap).set_pin(PIN)
        expect_ctap_error(
            ERR.UNAUTHORIZED_PERMISSION,
            ClientPin(ctap, PinProtocolV2()).get_pin_token,
            PIN,
            PERM.PERSISTENT_CREDENTIAL_MGMT | PERM.CREDENTIAL_MGMT,
        )
        token = pcmr_token(ctap)
        expect(len(token) == 32, "a 32-byte token")
        expect(pcmr_token(ctap) == token, "the same persistent token when asked again")
        results["token"] = token

    def enc_identifier_and_state_through_the_token():
        _, ctap = open_ctap2()
        token = results["token"]
        identifier, state = read_encrypted(ctap, token)
        raw1, raw2 = raw_info(ctap), raw_info(ctap)
        expect(raw1[ENC_IDENTIFIER] != raw2[ENC_IDENTIFIER], "a fresh IV per getInfo")
        again = read_encrypted(ctap, token)
        expect(again == (identifier, state), "getInfo changes neither")
        results["identifier"], results["state"] = identifier, state

    def state_changes_after_a_new_discoverable_credential():
        _, ctap = open_ctap2()
        token = results["token"]
        rp_id = f"pay.{RUN}.fido2d.test"
        made = make_discoverable(ctap, rp_id, "payer", {"thirdPartyPayment": True})
        expect(made.auth_data.extensions == {"thirdPartyPayment": True},
               f"makeCredential says the flag is set: {made.auth_data.extensions}")
        identifier, state = read_encrypted(ctap, token)
        expect(identifier == results["identifier"], "the identifier stays")
        expect(state != results["state"], "the credential store state changed")
        results["state"] = state
        results["rp_id"] = rp_id
        results["credential_id"] = made.auth_data.credential_data.credential_id

    def third_party_payment_is_reported():
        _, ctap = open_ctap2()
        rp_id, credential_id = results["rp_id"], results["credential_id"]
        asked = assert_with(ctap, rp_id, credential_id, {"thirdPartyPayment": True})
        expect(asked.auth_data.extensions == {"thirdPartyPayment": True},
               f"getAssertion outputs {asked.auth_data.extensions}")
        plain = assert_with(ctap, rp_id, credential_id)
        expect(not plain.auth_data.extensions, "not asked, not reported")

    def the_persistent_token_reads_credential_management_only():
        _, ctap = open_ctap2()
        credman = CredentialManagement(ctap, PinProtocolV2(), results["token"])
        metadata = credman.get_metadata()
        expect(metadata[CredentialManagement.RESULT.EXISTING_CRED_COUNT] == 1, f"{metadata}")
        rps = credman.enumerate_rps()
        expect([rp[CredentialManagement.RESULT.RP]["id"] for rp in rps] == [results["rp_id"]],
               f"RPs {rps}")
        creds = credman.enumerate_creds(sha256(results["rp_id"].encode()))
        expect(len(creds) == 1, f"{creds}")
        expect(creds[0][CredentialManagement.RESULT.THIRD_PARTY_PAYMENT] is True,
               "credential management reports thirdPartyPayment (0x0C)")
        expect_ctap_error(
            ERR.PIN_AUTH_INVALID,
            credman.delete_cred,
            creds[0][CredentialManagement.RESULT.CREDENTIAL_ID],
        )
        expect_ctap_error(
            ERR.PIN_AUTH_INVALID,
            credman.update_user_info,
            creds[0][CredentialManagement.RESULT.CREDENTIAL_ID],
            {"id": creds[0][CredentialManagement.RESULT.USER]["id"], "name": "mallory"},
        )
        expect(credman.get_metadata()[CredentialManagement.RESULT.EXISTING_CRED_COUNT] == 1,
               "nothing deleted")

    def pin_complexity_policy_through_config():
        _, ctap = open_ctap2()
        protocol = PinProtocolV2()
        token = ClientPin(ctap, protocol).get_pin_token(PIN, PERM.AUTHENTICATOR_CFG)
        listed = f"policy.{RUN}.fido2d.test"
        Config(ctap, protocol, token).set_min_pin_length(
            rp_ids=[listed], pin_complexity_policy=True
        )
        expect(raw_info(ctap)[PIN_COMPLEXITY_POLICY] is True, "0x1B now true")
        expect_ctap_error(ERR.PIN_POLICY_VIOLATION, ClientPin(ctap).change_pin, PIN, "123456")
        expect_ctap_error(ERR.PIN_POLICY_VIOLATION, ClientPin(ctap).change_pin, PIN, "777777")
        made = make_discoverable(ctap, listed, "policy", {"pinComplexityPolicy": True}, rk=False)
        expect(made.auth_data.extensions == {"pinComplexityPolicy": True},
               f"a listed RP learns the policy is on: {made.auth_data.extensions}")
        _, state = read_encrypted(ctap, results["token"])
        expect(state == results["state"], "a non-discoverable credential changes no state")

    def save():
        with open(saved, "w") as f:
            json.dump({k: (v.hex() if isinstance(v, bytes) else v) for k, v in results.items()}, f)

    return [
        ("get_info_members", get_info_members),
        ("pcmr_is_granted_alone", pcmr_is_granted_alone),
        ("enc_identifier_and_state_through_the_token", enc_identifier_and_state_through_the_token),
        ("state_changes_after_a_new_discoverable_credential",
         state_changes_after_a_new_discoverable_credential),
        ("third_party_payment_is_reported", third_party_payment_is_reported),
        ("the_persistent_token_reads_credential_management_only",
         the_persistent_token_reads_credential_management_only),
        ("pin_complexity_policy_through_config", pin_complexity_policy_through_config),
        ("save", save),
    ]


def restarted(saved: str) -> list:
    with open(saved) as f:
        loaded = json.load(f)
    token = bytes.fromhex(loaded["token"])

    def the_persistent_token_survives_the_restart():
        _, ctap = open_ctap2()
        identifier, state = read_encrypted(ctap, token)
        expect(identifier.hex() == loaded["identifier"], "the same identifier")
        expect(state.hex() == loaded["state"], "nothing changed, the same state")
        credman = CredentialManagement(ctap, PinProtocolV2(), token)
        expect(credman.get_metadata()[CredentialManagement.RESULT.EXISTING_CRED_COUNT] == 1,
               "the saved token still reads credential management")

    def a_pin_change_ends_it():
        _, ctap = open_ctap2()
        new_pin = PIN[::-1]
        ClientPin(ctap).change_pin(PIN, new_pin)
        raw = raw_info(ctap)
        stale = decrypt_member(token, b"encIdentifier", raw[ENC_IDENTIFIER])
        expect(stale.hex() != loaded["identifier"], "the old token reads nothing any more")
        credman = CredentialManagement(ctap, PinProtocolV2(), token)
        expect_ctap_error(ERR.PIN_AUTH_INVALID, credman.get_metadata)
        fresh = ClientPin(ctap, PinProtocolV2()).get_pin_token(
            new_pin, PERM.PERSISTENT_CREDENTIAL_MGMT
        )
        expect(fresh != token, "a new persistent token")
        identifier, _ = read_encrypted(ctap, fresh)
        expect(identifier.hex() == loaded["identifier"], "the identifier outlives the PIN")

    return [
        ("the_persistent_token_survives_the_restart", the_persistent_token_survives_the_restart),
        ("a_pin_change_ends_it", a_pin_change_ends_it),
    ]


def main(argv: list[str]) -> int:
    global PORT
    if len(argv) != 4 or not argv[1].isdigit() or argv[2] not in ("first", "restarted"):
        print(__doc__, file=sys.stderr)
        return 2
    PORT = int(argv[1])
    phase = first if argv[2] == "first" else restarted
    return run(phase(argv[3]))


if __name__ == "__main__":
    sys.exit(main(sys.argv))

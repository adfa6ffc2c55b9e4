#!/usr/bin/env python3
"""PIN, credential management, config, extensions and large blobs against a
running fido2d, driven and verified by python-fido2.

Usage:
  python3 tests/e2e/pin.py PORT features        every check below, on a fresh key
  python3 tests/e2e/pin.py PORT lockout PHASE   one phase (a..e) of the lockout
                                                scenario; the harness restarts
                                                the daemon between phases

fido2d must serve CTAPHID over UDP on 127.0.0.1:PORT with user presence
auto-approved.  Everything goes through python-fido2's own client classes
(ClientPin, CredentialManagement, LargeBlobs, Config, Fido2Client with its
extensions) and its relying-party side (Fido2Server); this script does no
CTAP crypto of its own.

Prints "PASS name" / "FAIL name: reason" per check, then "N passed, M failed".
"""

from __future__ import annotations

import os
import sys
from typing import Callable

from fido2.client import DefaultClientDataCollector, Fido2Client, UserInteraction
from fido2.ctap import CtapError
from fido2.ctap2 import Ctap2
from fido2.ctap2.blob import LargeBlobs
from fido2.ctap2.config import Config
from fido2.ctap2.credman import CredentialManagement
from fido2.ctap2.extensions import (
    CredBlobExtension,
    CredProtectExtension,
    HmacSecretExtension,
    LargeBlobExtension,
    MinPinLengthExtension,
)
from fido2.ctap2.pin import ClientPin, PinProtocolV1, PinProtocolV2
from fido2.server import Fido2Server
from fido2.utils import sha256, websafe_decode
from fido2.webauthn import (
    PublicKeyCredentialDescriptor,
    PublicKeyCredentialType,
    PublicKeyCredentialUserEntity,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from checks import CheckFailed, expect, expect_ctap_error, run
from udp_hid import open_udp_device

PORT = 0
PIN = "123456"
RUN = os.urandom(3).hex()
ERR = CtapError.ERR
PERM = ClientPin.PERMISSION
REQUIRED = UserVerificationRequirement.REQUIRED
DISCOURAGED = UserVerificationRequirement.DISCOURAGED


def rp_id_for(name: str) -> str:
    return f"{name}.{RUN}.fido2d.test"


def user(name: str) -> dict:
    return {"id": os.urandom(16), "name": name, "displayName": name.title()}


class PinInteraction(UserInteraction):
    """The person at the keyboard: types the PIN when the client asks."""

    def __init__(self, pin: str):
        self.pin = pin
        self.asked = 0

    def request_pin(self, permissions, rp_id):
        self.asked += 1
        return self.pin


def client(dev, rp_id: str, pin: str = PIN, extensions=None) -> Fido2Client:
    kwargs = {}
    if extensions is not None:
        kwargs["extensions"] = extensions
    return Fido2Client(
        dev,
        client_data_collector=DefaultClientDataCollector(f"https://{rp_id}"),
        user_interaction=PinInteraction(pin),
        **kwargs,
    )


def server(rp_id: str) -> Fido2Server:
    return Fido2Server({"id": rp_id, "name": rp_id}, attestation="none")


def register(c, srv, account, uv=REQUIRED, rk=True, extensions=None):
    options, state = srv.register_begin(
        account,
        user_verification=uv,
        resident_key_requirement=(
            ResidentKeyRequirement.REQUIRED if rk else ResidentKeyRequirement.DISCOURAGED
        ),
        extensions=extensions,
    )
    response = c.make_credential(options.public_key)
    auth_data = srv.register_complete(state, response)
    return auth_data, response


def authenticate(c, srv, creds, uv=REQUIRED, extensions=None, allow=True):
    options, state = srv.authenticate_begin(
        creds if allow else None, user_verification=uv, extensions=extensions
    )
    selection = c.get_assertion(options.public_key)
    response = selection.get_response(0)
    srv.authenticate_complete(state, creds, response)
    return response, selection.get_assertions()[0]


def open_ctap2():
    dev = open_udp_device(PORT)
    return dev, Ctap2(dev)


CHECKS: list[Callable[[], None]] = []


def check(fn):
    CHECKS.append(fn)
    return fn


# --- getInfo ------------------------------------------------------------------


@check
def info_before_a_pin():
    dev, ctap2 = open_ctap2()
    info = ctap2.info
    for name, value in [
        ("clientPin", False),
        ("pinUvAuthToken", True),
        ("credMgmt", True),
        ("authnrCfg", True),
        ("largeBlobs", True),
        ("setMinPINLength", True),
        ("makeCredUvNotRqd", True),
        ("alwaysUv", False),
        ("rk", True),
        ("up", True),
    ]:
        expect(info.options.get(name) is value, f"option {name}: {info.options}")
    expect("uv" not in info.options, "no built-in UV, so no 'uv' option")
    expect(info.pin_uv_protocols == [2, 1], f"pinUvAuthProtocols {info.pin_uv_protocols}")
    for ext in ("credProtect", "hmac-secret", "hmac-secret-mc", "credBlob", "largeBlobKey", "minPinLength"):
        expect(ext in info.extensions, f"{ext} not in {info.extensions}")
    expect(info.min_pin_length == 4, f"minPINLength {info.min_pin_length}")
    expect(info.max_large_blob >= 1024, f"maxSerializedLargeBlobArray {info.max_large_blob}")
    expect(info.max_cred_blob_length == 32, f"maxCredBlobLength {info.max_cred_blob_length}")
    expect(info.max_rpids_for_min_pin == 8, f"maxRPIDsForSetMinPINLength {info.max_rpids_for_min_pin}")
    expect(info.force_pin_change is False, "forcePINChange")
    expect(info.remaining_disc_creds and info.remaining_disc_creds > 0, "remainingDiscoverableCredentials")
    expect(info.firmware_version > 0, "firmwareVersion")
    expect(info.max_creds_in_list == 64 and info.max_cred_id_length > 0, "list limits")
    expect("usb" in info.transports, f"transports {info.transports}")
    expect(info.preferred_platform_uv_attempts == 0 and info.uv_modality == 0, "no UV fields")
    dev.close()


# --- clientPIN ----------------------------------------------------------------


@check
def set_pin_and_retries():
    dev, ctap2 = open_ctap2()
    ClientPin(ctap2, PinProtocolV2()).set_pin(PIN)
    dev.close()
    dev, ctap2 = open_ctap2()
    expect(ctap2.info.options.get("clientPin") is True, "clientPin not true after setPIN")
    retries, power_cycle = ClientPin(ctap2).get_pin_retries()
    expect(retries == 8, f"pinRetries {retries}")
    expect(not power_cycle, "powerCycleState set")
    expect_ctap_error(ERR.PIN_AUTH_INVALID, ClientPin(ctap2).set_pin, "999999")
    dev.close()


@check
def wrong_pin_costs_a_retry_right_pin_restores_them():
    dev, ctap2 = open_ctap2()
    cp = ClientPin(ctap2, PinProtocolV1())
    expect_ctap_error(ERR.PIN_INVALID, cp.get_pin_token, "000000", PERM.GET_ASSERTION, "x")
    expect(cp.get_pin_retries()[0] == 7, "a wrong PIN did not count")
    cp.get_pin_token(PIN, PERM.GET_ASSERTION, "x")
    expect(cp.get_pin_retries()[0] == 8, "the right PIN did not restore the retries")
    dev.close()


@check
def change_pin_with_both_protocols():
    dev, ctap2 = open_ctap2()
    for protocol, old, new in [(PinProtocolV1(), PIN, "654321"), (PinProtocolV2(), "654321", PIN)]:
        cp = ClientPin(ctap2, protocol)
        cp.change_pin(old, new)
        expect_ctap_error(ERR.PIN_INVALID, cp.get_pin_token, old, PERM.CREDENTIAL_MGMT)
        cp.get_pin_token(new, PERM.CREDENTIAL_MGMT)
    dev.close()


# --- WebAuthn with a PIN ------------------------------------------------------


@check
def webauthn_uv_required_with_pin():
    rp_id = rp_id_for("uv")
    srv = server(rp_id)
    with open_udp_device(PORT) as dev:
        c = client(dev, rp_id)
        person = PinInteraction(PIN)
        c = Fido2Client(
            dev,
            client_data_collector=DefaultClientDataCollector(f"https://{rp_id}"),
            user_interaction=person,
        )
        auth_data, _ = register(c, srv, user("uma"))
        expect(auth_data.is_user_verified(), "registration not user-verified")
        response, assertion = authenticate(c, srv, [auth_data.credential_data], allow=False)
        expect(assertion.auth_data.is_user_verified(), "assertion not user-verified")
        expect(assertion.user.get("name") == "uma", f"user entity {assertion.user}")
        expect(person.asked >= 2, "the client never asked for the PIN")


@check
def rk_without_uv_is_refused_with_a_pin():
    # makeCredUvNotRqd: non-discoverable may skip UV, discoverable may not.
    dev, ctap2 = open_ctap2()
    rp = {"id": rp_id_for("rk-no-uv"), "name": "x"}
    params = [{"type": "public-key", "alg": -7}]
    ctap2.make_credential(os.urandom(32), rp, user("nora"), params)
    expect_ctap_error(
        ERR.PUAT_REQUIRED, ctap2.make_credential, os.urandom(32), rp, user("nora"), params, options={"rk": True}
    )
    dev.close()


# --- credential management ----------------------------------------------------


@check
def credential_management_list_update_delete():
    rp_id = rp_id_for("credman")
    srv = server(rp_id)
    with open_udp_device(PORT) as dev:
        accounts = [user("carl"), user("cora")]
        creds = [register(client(dev, rp_id), srv, a)[0].credential_data for a in accounts]
        ctap2 = Ctap2(dev)
        protocol = PinProtocolV2()
        token = ClientPin(ctap2, protocol).get_pin_token(PIN, PERM.CREDENTIAL_MGMT)
        cm = CredentialManagement(ctap2, protocol, token)
        meta = cm.get_metadata()
        expect(meta[CredentialManagement.RESULT.EXISTING_CRED_COUNT] >= 2, f"metadata {meta}")
        rps = [rp[CredentialManagement.RESULT.RP]["id"] for rp in cm.enumerate_rps()]
        expect(rp_id in rps, f"{rp_id} not in {rps}")
        listed = cm.enumerate_creds(sha256(rp_id.encode()))
        ids = {c[CredentialManagement.RESULT.CREDENTIAL_ID]["id"] for c in listed}
        expect(ids == {c.credential_id for c in creds}, "enumerated credentials differ")
        for entry in listed:
            key = entry[CredentialManagement.RESULT.PUBLIC_KEY]
            match = [c for c in creds if c.credential_id == entry[CredentialManagement.RESULT.CREDENTIAL_ID]["id"]]
            expect(dict(match[0].public_key) == dict(key), "public key differs")
        descriptor = PublicKeyCredentialDescriptor(
            type=PublicKeyCredentialType.PUBLIC_KEY, id=creds[0].credential_id
        )
        cm.update_user_info(
            descriptor,
            PublicKeyCredentialUserEntity(id=accounts[0]["id"], name="carl2", display_name="Carl II"),
        )
        listed = cm.enumerate_creds(sha256(rp_id.encode()))
        names = {c[CredentialManagement.RESULT.USER]["name"] for c in listed}
        expect("carl2" in names, f"update not seen: {names}")
        cm.delete_cred(descriptor)
        left = cm.enumerate_creds(sha256(rp_id.encode()))
        expect(len(left) == 1, f"{len(left)} credentials after delete")
        ga = Ctap2(dev).get_assertion
        expect_ctap_error(
            ERR.NO_CREDENTIALS, ga, rp_id, os.urandom(32), [{"type": "public-key", "id": creds[0].credential_id}]
        )


# --- extensions ---------------------------------------------------------------


@check
def hmac_secret_same_salt_same_secret_uv_differs():
    rp_id = rp_id_for("hmac")
    srv = server(rp_id)
    ext = [HmacSecretExtension(allow_hmac_secret=True)]
    with open_udp_device(PORT) as dev:
        c = client(dev, rp_id, extensions=ext)
        auth_data, response = register(c, srv, user("hal"), rk=False, extensions={"hmacCreateSecret": True})
        expect(response.client_extension_results.get("hmacCreateSecret") is True, "hmacCreateSecret")
        cred = auth_data.credential_data
        salt = os.urandom(32)
        salt2 = os.urandom(32)

        def secret(uv, salts):
            inputs = {"hmacGetSecret": {"salt1": salts[0], **({"salt2": salts[1]} if len(salts) > 1 else {})}}
            resp, _ = authenticate(client(dev, rp_id, extensions=ext), srv, [cred], uv=uv, extensions=inputs)
            return resp.client_extension_results["hmacGetSecret"]

        a = secret(REQUIRED, [salt])
        b = secret(REQUIRED, [salt])
        expect(a["output1"] == b["output1"], "same salt, different secrets")
        two = secret(REQUIRED, [salt, salt2])
        expect(two["output1"] == a["output1"] and two["output2"] != a["output1"], "two salts")
        no_uv = secret(DISCOURAGED, [salt])
        expect(no_uv["output1"] != a["output1"], "UV and non-UV secrets are equal")
        expect(secret(DISCOURAGED, [salt])["output1"] == no_uv["output1"], "non-UV secret unstable")


@check
def prf_at_registration_and_assertion_agree():
    rp_id = rp_id_for("prf")
    srv = server(rp_id)
    salt = os.urandom(32)
    with open_udp_device(PORT) as dev:
        c = client(dev, rp_id)
        auth_data, response = register(c, srv, user("pia"), extensions={"prf": {"eval": {"first": salt}}})
        prf = response.client_extension_results["prf"]
        expect(prf.get("enabled") is True, f"prf at create: {prf}")
        first = prf.get("results", {}).get("first")
        expect(first is not None, "no hmac-secret-mc result at registration")
        expect(len(websafe_decode(first)) == 32, "a PRF output is 32 bytes")
        resp, _ = authenticate(
            client(dev, rp_id), srv, [auth_data.credential_data], extensions={"prf": {"eval": {"first": salt}}}
        )
        again = resp.client_extension_results["prf"]["results"]["first"]
        expect(again == first, "PRF at assertion differs from PRF at registration")


@check
def cred_blob_round_trip():
    rp_id = rp_id_for("credblob")
    srv = server(rp_id)
    blob = os.urandom(32)
    with open_udp_device(PORT) as dev:
        auth_data, _ = register(client(dev, rp_id), srv, user("bea"), extensions={"credBlob": blob})
        expect(auth_data.extensions.get("credBlob") is True, f"credBlob stored: {auth_data.extensions}")
        resp, assertion = authenticate(
            client(dev, rp_id), srv, [auth_data.credential_data], extensions={"getCredBlob": True}
        )
        expect(assertion.auth_data.extensions.get("credBlob") == blob, "credBlob differs")


@check
def cred_protect_uv_required_hides_the_credential():
    rp_id = rp_id_for("credprotect")
    srv = server(rp_id)
    with open_udp_device(PORT) as dev:
        auth_data, _ = register(
            client(dev, rp_id),
            srv,
            user("pat"),
            extensions={
                "credentialProtectionPolicy": "userVerificationRequired",
                "enforceCredentialProtectionPolicy": True,
            },
        )
        expect(auth_data.extensions.get("credProtect") == 3, f"credProtect {auth_data.extensions}")
        cred_id = auth_data.credential_data.credential_id
        ctap2 = Ctap2(dev)
        allow = [{"type": "public-key", "id": cred_id}]
        expect_ctap_error(ERR.NO_CREDENTIALS, ctap2.get_assertion, rp_id, os.urandom(32), allow)
        expect_ctap_error(ERR.NO_CREDENTIALS, ctap2.get_assertion, rp_id, os.urandom(32))
        authenticate(client(dev, rp_id), srv, [auth_data.credential_data])


@check
def large_blob_write_then_read():
    rp_id = rp_id_for("largeblob")
    srv = server(rp_id)
    data = os.urandom(700)
    with open_udp_device(PORT) as dev:
        auth_data, response = register(
            client(dev, rp_id), srv, user("lou"), extensions={"largeBlob": {"support": "required"}}
        )
        expect(response.client_extension_results["largeBlob"]["supported"] is True, "largeBlob support")
        creds = [auth_data.credential_data]
        resp, _ = authenticate(client(dev, rp_id), srv, creds, extensions={"largeBlob": {"write": data}})
        expect(resp.client_extension_results["largeBlob"].get("written") is True, "not written")
        resp, _ = authenticate(client(dev, rp_id), srv, creds, extensions={"largeBlob": {"read": True}})
        blob = resp.client_extension_results["largeBlob"].get("blob")
        expect(blob is not None and websafe_decode(blob) == data, "read back differs")
        # The same array through LargeBlobs directly: readable without a token.
        ctap2 = Ctap2(dev)
        array = LargeBlobs(ctap2).read_blob_array()
        expect(len(array) >= 1, f"array of {len(array)} entries")
        expect_ctap_error(ERR.PUAT_REQUIRED, LargeBlobs(ctap2).write_blob_array, [])


@check
def min_pin_length_extension_and_force_change():
    rp_id = rp_id_for("minpin")
    srv = server(rp_id)
    with open_udp_device(PORT) as dev:
        ctap2 = Ctap2(dev)
        protocol = PinProtocolV2()
        token = ClientPin(ctap2, protocol).get_pin_token(PIN, PERM.AUTHENTICATOR_CFG)
        Config(ctap2, protocol, token).set_min_pin_length(min_pin_length=8, rp_ids=[rp_id])
        ctap2 = Ctap2(dev)
        expect(ctap2.info.min_pin_length == 8, f"minPINLength {ctap2.info.min_pin_length}")
        expect(ctap2.info.force_pin_change is True, "a 6-digit PIN under an 8 minimum must change")
        expect_ctap_error(ERR.PIN_POLICY_VIOLATION, ClientPin(ctap2).get_pin_token, PIN, PERM.GET_ASSERTION, rp_id)
        ClientPin(ctap2).change_pin(PIN, "12345678")
        ctap2 = Ctap2(dev)
        expect(ctap2.info.force_pin_change is False, "forcePINChange after changePIN")
        auth_data, _ = register(
            client(dev, rp_id, pin="12345678", extensions=[MinPinLengthExtension()]),
            srv,
            user("min"),
            extensions={"minPinLength": True},
        )
        expect(auth_data.extensions.get("minPinLength") == 8, f"minPinLength output {auth_data.extensions}")


@check
def always_uv_toggles():
    with open_udp_device(PORT) as dev:
        ctap2 = Ctap2(dev)
        protocol = PinProtocolV1()
        token = ClientPin(ctap2, protocol).get_pin_token("12345678", PERM.AUTHENTICATOR_CFG)
        Config(ctap2, protocol, token).toggle_always_uv()
        ctap2 = Ctap2(dev)
        expect(ctap2.info.options.get("alwaysUv") is True, "alwaysUv not on")
        rp = {"id": rp_id_for("always-uv"), "name": "x"}
        expect_ctap_error(
            ERR.PUAT_REQUIRED, ctap2.make_credential, os.urandom(32), rp, user("al"), [{"type": "public-key", "alg": -7}]
        )
        token = ClientPin(ctap2, protocol).get_pin_token("12345678", PERM.AUTHENTICATOR_CFG)
        Config(ctap2, protocol, token).toggle_always_uv()
        expect(Ctap2(dev).info.options.get("alwaysUv") is False, "alwaysUv not off")


# --- lockout across restarts ----------------------------------------------------


def wrong(cp, code):
    expect_ctap_error(code, cp.get_pin_token, "000000", PERM.CREDENTIAL_MGMT)


def retries(cp, expected, power_cycle):
    got, cycle = cp.get_pin_retries()
    expect(got == expected, f"pinRetries {got}, want {expected}")
    expect(bool(cycle) == power_cycle, f"powerCycleState {cycle}, want {power_cycle}")


def lockout(phase: str) -> None:
    dev, ctap2 = open_ctap2()
    cp = ClientPin(ctap2, PinProtocolV2())
    if phase == "a":
        cp.set_pin(PIN)
        wrong(cp, ERR.PIN_INVALID)
        wrong(cp, ERR.PIN_INVALID)
        wrong(cp, ERR.PIN_AUTH_BLOCKED)
        expect_ctap_error(ERR.PIN_AUTH_BLOCKED, cp.get_pin_token, PIN, PERM.CREDENTIAL_MGMT)
        retries(cp, 5, True)
    elif phase == "b":
        retries(cp, 5, False)  # the restart lifted the block, not the count
        cp.get_pin_token(PIN, PERM.CREDENTIAL_MGMT)
        retries(cp, 8, False)
        for code in (ERR.PIN_INVALID, ERR.PIN_INVALID, ERR.PIN_AUTH_BLOCKED):
            wrong(cp, code)
        retries(cp, 5, True)
    elif phase == "c":
        for code in (ERR.PIN_INVALID, ERR.PIN_INVALID, ERR.PIN_AUTH_BLOCKED):
            wrong(cp, code)
        retries(cp, 2, True)
    elif phase == "d":
        wrong(cp, ERR.PIN_INVALID)
        wrong(cp, ERR.PIN_BLOCKED)
        expect_ctap_error(ERR.PIN_BLOCKED, cp.get_pin_token, PIN, PERM.CREDENTIAL_MGMT)
        retries(cp, 0, False)
    elif phase == "e":
        expect_ctap_error(ERR.PIN_BLOCKED, cp.get_pin_token, PIN, PERM.CREDENTIAL_MGMT)
        ctap2.reset()
        ctap2 = Ctap2(dev)
        expect(ctap2.info.options.get("clientPin") is False, "a PIN survived the reset")
        cp = ClientPin(ctap2, PinProtocolV2())
        retries(cp, 8, False)
        cp.set_pin("24681357")
        cp.get_pin_token("24681357", PERM.CREDENTIAL_MGMT)
    else:
        raise CheckFailed(f"unknown phase {phase!r}")
    dev.close()


def main(argv: list[str]) -> int:
    global PORT
    if len(argv) < 3 or not argv[1].isdigit():
        print(__doc__, file=sys.stderr)
        return 2
    PORT = int(argv[1])
    if argv[2] == "features":
        return run([(fn.__name__, fn) for fn in CHECKS])
    if argv[2] == "lockout" and len(argv) == 4:
        return run([(f"lockout_{argv[3]}", lambda: lockout(argv[3]))])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

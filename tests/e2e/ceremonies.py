#!/usr/bin/env python3
"""End-to-end FIDO ceremonies against a running fido2d, verified by python-fido2.

Usage: python3 tests/e2e/ceremonies.py PORT | /dev/hidrawN [--algorithms es256,eddsa]

fido2d must serve CTAPHID with user presence auto-approved, either over UDP on
127.0.0.1:PORT (--transport udp) or as the virtual USB key behind /dev/hidrawN
(--transport uhid, reached through the kernel like any USB key).  --algorithms
names the algorithms its keystore creates keys for (default: both; the TPM
keystore has ES256 only): the checks expect exactly those in getInfo, and
UNSUPPORTED_ALGORITHM for the others.  Every check talks to the daemon through python-fido2's own
client stack (CtapHidDevice, Ctap2, Ctap1, Fido2Client) and every signature is
verified by python-fido2's relying-party side (Fido2Server, the attestation
verifiers, RegistrationData/SignatureData.verify): this script does no crypto
of its own.

Prints one line per check, "PASS name" or "FAIL name: reason" (details of a
failure go to stderr), then "N passed, M failed".  Exits 1 if any check failed.
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from contextlib import contextmanager
from importlib.metadata import version as package_version
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.attestation import (
    AttestationType,
    FidoU2FAttestation,
    NoneAttestation,
    PackedAttestation,
    verify_x509_chain,
)
from fido2.client import (
    ClientError,
    DefaultClientDataCollector,
    Fido2Client,
    UserInteraction,
)
from fido2.cose import ES256, CoseKey, EdDSA
from fido2.ctap import CtapError
from fido2.ctap1 import APDU, ApduError, Ctap1
from fido2.ctap2 import AssertionResponse, Ctap2
from fido2.hid import CAPABILITY
from fido2.server import Fido2Server
from fido2.utils import sha256
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticationResponse,
    AuthenticatorAssertionResponse,
    CollectedClientData,
    PublicKeyCredentialParameters,
    PublicKeyCredentialType,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

import targets

ES256_ALG = ES256.ALGORITHM  # -7
EDDSA_ALG = EdDSA.ALGORITHM  # -8
RS256_ALG = -257

# fido2d has no PIN and no built-in UV: ask for none, like an RP that only
# wants a security key as a second factor.
UV = UserVerificationRequirement.DISCOURAGED

# Distinct RP IDs per run, so running the script twice against one daemon
# does not mix credentials of the two runs.
RUN = os.urandom(3).hex()

TARGET = ""  # set by main(): a UDP port or a hidraw path
# The algorithms the keystore under test supports; set by main().
SUPPORTED_ALGS = [ES256_ALG, EDDSA_ALG]
ALG_NAMES = {"es256": ES256_ALG, "eddsa": EDDSA_ALG}


class CheckFailed(Exception):
    """A check's expectation did not hold."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


# --- plumbing ---------------------------------------------------------------


@contextmanager
def device():
    """A fresh CTAPHID connection (own socket or hidraw handle, own channel) per check."""
    dev = targets.open_device(TARGET)
    try:
        yield dev
    finally:
        dev.close()


def rp_id_for(name: str) -> str:
    return f"{name}.{RUN}.fido2d.test"


def origin_for(rp_id: str) -> str:
    return f"https://{rp_id}"


def user(name: str) -> dict:
    return {"id": os.urandom(16), "name": name, "displayName": name.title()}


def verify_attestation(attestation_object: AttestationObject, client_data_hash: bytes):
    """Attestation check handed to Fido2Server: python-fido2's own verifiers for
    the formats fido2d may produce ("packed", "none"); anything else fails."""
    fmt = attestation_object.fmt
    if fmt == "packed":
        verifier = PackedAttestation()
    elif fmt == "none":
        verifier = NoneAttestation()
    else:
        raise ValueError(f"unexpected attestation format {fmt!r}")
    verifier.verify(
        attestation_object.att_stmt, attestation_object.auth_data, client_data_hash
    )


def make_server(rp_id: str, attestation: str = "direct", algs=None) -> Fido2Server:
    server = Fido2Server(
        {"id": rp_id, "name": f"fido2d e2e {rp_id}"},
        attestation=attestation,
        verify_attestation=verify_attestation,
    )
    if algs is not None:
        server.allowed_algorithms = [
            PublicKeyCredentialParameters(
                type=PublicKeyCredentialType.PUBLIC_KEY, alg=a
            )
            for a in algs
        ]
    return server


def make_client(dev, rp_id: str) -> Fido2Client:
    client = Fido2Client(
        dev,
        client_data_collector=DefaultClientDataCollector(origin_for(rp_id)),
        user_interaction=UserInteraction(),
    )
    # Fido2Client silently falls back to U2F when CTAP2 setup fails; a CTAP2
    # ceremony that quietly ran over CTAP1 would prove nothing.
    expect(
        "FIDO_2_0" in client.info.versions,
        f"Fido2Client fell back to CTAP1 (versions {client.info.versions})",
    )
    return client


def register(client: Fido2Client, server: Fido2Server, account: dict, **kwargs):
    """Full WebAuthn registration; returns (credential data, RegistrationResponse)."""
    options, state = server.register_begin(account, user_verification=UV, **kwargs)
    response = client.make_credential(options.public_key)
    auth_data = server.register_complete(state, response)
    expect(auth_data.credential_data is not None, "no attested credential data")
    return auth_data.credential_data, response


def authenticate(client: Fido2Client, server: Fido2Server, credentials, allow=True):
    """Full WebAuthn authentication of every assertion the client returns.

    With allow=False the allowList is empty (discoverable credentials).
    Returns the list of (AuthenticationResponse, AssertionResponse) pairs.
    """
    options, state = server.authenticate_begin(
        credentials if allow else None, user_verification=UV
    )
    selection = client.get_assertion(options.public_key)
    assertions = selection.get_assertions()
    results = []
    for i, assertion in enumerate(assertions):
        response = selection.get_response(i)
        server.authenticate_complete(state, credentials, response)
        results.append((response, assertion))
    return results


def with_presence(fn: Callable, *args, timeout: float = 5.0):
    """Call a U2F command the way U2F clients do: retry while the authenticator
    answers 0x6985 (conditions not satisfied: waiting for user presence)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn(*args)
        except ApduError as e:
            if e.code != APDU.USE_NOT_SATISFIED or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def expect_ctap_error(code: CtapError.ERR, fn: Callable, *args, **kwargs) -> None:
    try:
        fn(*args, **kwargs)
    except CtapError as e:
        got = e.code
    else:
        raise CheckFailed(f"expected {code.name}, but the command succeeded")
    expect(got == code, f"expected {code.name}, got {CtapError(got)}")


def expect_apdu_error(code: int, fn: Callable, *args) -> None:
    try:
        fn(*args)
    except ApduError as e:
        got = e.code
    else:
        raise CheckFailed(f"expected SW 0x{code:04X}, but the command succeeded")
    expect(got == code, f"expected SW 0x{code:04X}, got SW 0x{got:04X}")


def u2f_public_key(cose_key: CoseKey) -> bytes:
    """The 65-byte uncompressed P-256 point U2F uses, from a COSE ES256 key."""
    expect(cose_key.ALGORITHM == ES256_ALG, f"not an ES256 key: {dict(cose_key)}")
    return b"\x04" + cose_key[-2] + cose_key[-3]


def ctap2_credential(ctap2: Ctap2, rp_id: str):
    """An ES256 non-discoverable credential made straight over CTAP2."""
    att = ctap2.make_credential(
        os.urandom(32),
        {"id": rp_id, "name": rp_id},
        user("raw"),
        [{"type": "public-key", "alg": ES256_ALG}],
    )
    expect(att.auth_data.credential_data is not None, "no attested credential data")
    return att.auth_data.credential_data


def register_u2f(ctap1: Ctap1, app_param: bytes):
    """U2F registration whose attestation signature python-fido2 verified."""
    client_param = sha256(b"u2f registration client data " + os.urandom(8))
    reg = with_presence(ctap1.register, client_param, app_param)
    reg.verify(app_param, client_param)
    return reg


CHECKS: list[Callable[[], None]] = []


def check(fn: Callable[[], None]) -> Callable[[], None]:
    CHECKS.append(fn)
    return fn


# --- CTAPHID ----------------------------------------------------------------


@check
def hid_init_and_ping():
    with device() as dev:
        expect(dev.version == 2, f"CTAPHID protocol version {dev.version}, want 2")
        caps = CAPABILITY(dev.capabilities)
        expect(CAPABILITY.CBOR in caps, f"CBOR capability missing ({caps!r})")
        expect(CAPABILITY.NMSG not in caps, "NMSG set, but U2F over MSG is served")
        payload = os.urandom(200)  # spans an init and three continuation packets
        expect(dev.ping(payload) == payload, "PING echo differs")


# --- CTAP2, raw -------------------------------------------------------------


@check
def ctap2_get_info():
    with device() as dev:
        info = Ctap2(dev).get_info()
        for version in ("FIDO_2_0", "FIDO_2_1", "U2F_V2"):
            expect(version in info.versions, f"{version} not in {info.versions}")
        expect(len(info.aaguid) == 16, f"aaguid is {len(info.aaguid)} bytes")
        algs = [a.get("alg") for a in info.algorithms if a.get("type") == "public-key"]
        expect(
            sorted(algs) == sorted(SUPPORTED_ALGS),
            f"algorithms {info.algorithms}, want exactly {SUPPORTED_ALGS}",
        )
        expect(info.options.get("rk") is True, f"options.rk not true: {info.options}")
        expect(info.options.get("up", True) is True, f"options.up: {info.options}")


@check
def ctap2_unsupported_algorithm():
    with device() as dev:
        expect_ctap_error(
            CtapError.ERR.UNSUPPORTED_ALGORITHM,
            Ctap2(dev).make_credential,
            os.urandom(32),
            {"id": rp_id_for("rs256"), "name": "rs256"},
            user("rs256"),
            [{"type": "public-key", "alg": RS256_ALG}],
        )


@check
def ctap2_algorithm_preference_order():
    # The authenticator must take the first algorithm of pubKeyCredParams it
    # supports, skipping unsupported ones.
    with device() as dev:
        att = Ctap2(dev).make_credential(
            os.urandom(32),
            {"id": rp_id_for("alg-order"), "name": "alg-order"},
            user("alg-order"),
            [
                {"type": "public-key", "alg": RS256_ALG},
                {"type": "public-key", "alg": EDDSA_ALG},
                {"type": "public-key", "alg": ES256_ALG},
            ],
        )
        key = att.auth_data.credential_data.public_key
        want = EDDSA_ALG if EDDSA_ALG in SUPPORTED_ALGS else ES256_ALG
        expect(key.ALGORITHM == want, f"picked alg {key.get(3)}, want {want}")


@check
def ctap2_unknown_rp_no_credentials():
    with device() as dev:
        expect_ctap_error(
            CtapError.ERR.NO_CREDENTIALS,
            Ctap2(dev).get_assertion,
            rp_id_for("never-registered"),
            os.urandom(32),
        )


@check
def ctap2_exclude_list():
    rp_id = rp_id_for("exclude")
    with device() as dev:
        ctap2 = Ctap2(dev)
        cred = ctap2_credential(ctap2, rp_id)
        expect_ctap_error(
            CtapError.ERR.CREDENTIAL_EXCLUDED,
            ctap2.make_credential,
            os.urandom(32),
            {"id": rp_id, "name": rp_id},
            user("exclude"),
            [{"type": "public-key", "alg": ES256_ALG}],
            [{"type": "public-key", "id": cred.credential_id}],
        )


@check
def ctap2_signature_counter_increases():
    rp_id = rp_id_for("counter")
    with device() as dev:
        ctap2 = Ctap2(dev)
        cred = ctap2_credential(ctap2, rp_id)
        allow = [{"type": "public-key", "id": cred.credential_id}]
        counters = []
        for _ in range(2):
            cdh = os.urandom(32)
            assertion = ctap2.get_assertion(rp_id, cdh, allow)
            assertion.verify(cdh, cred.public_key)
            counters.append(assertion.auth_data.counter)
        expect(counters[1] > counters[0], f"counter did not increase: {counters}")


@check
def ctap2_selection():
    with device() as dev:
        Ctap2(dev).selection()


# --- WebAuthn ceremonies (Fido2Client + Fido2Server) -------------------------


@check
def webauthn_es256_register_authenticate():
    rp_id = rp_id_for("es256")
    server = make_server(rp_id, algs=[ES256_ALG])
    with device() as dev:
        client = make_client(dev, rp_id)
        cred, _ = register(client, server, user("alice"))
        expect(cred.public_key.ALGORITHM == ES256_ALG, f"key {dict(cred.public_key)}")
        results = authenticate(client, server, [cred])
        expect(len(results) == 1, f"{len(results)} assertions, want 1")
        response, _ = results[0]
        expect(
            response.raw_id == cred.credential_id, "assertion for another credential"
        )


@check
def webauthn_eddsa_register_authenticate():
    rp_id = rp_id_for("eddsa")
    server = make_server(rp_id, algs=[EDDSA_ALG])
    with device() as dev:
        client = make_client(dev, rp_id)
        if EDDSA_ALG not in SUPPORTED_ALGS:
            # An RP that accepts only EdDSA: the key must say it cannot.
            try:
                register(client, server, user("bob"))
            except ClientError as e:
                cause = getattr(e.cause, "code", None)
                expect(
                    cause == CtapError.ERR.UNSUPPORTED_ALGORITHM,
                    f"expected UNSUPPORTED_ALGORITHM, got {e!r}",
                )
                return
            raise CheckFailed("an EdDSA-only registration succeeded")
        cred, _ = register(client, server, user("bob"))
        expect(cred.public_key.ALGORITHM == EDDSA_ALG, f"key {dict(cred.public_key)}")
        authenticate(client, server, [cred])


@check
def ctap2_eddsa_only():
    # pubKeyCredParams with EdDSA alone: a credential, or UNSUPPORTED_ALGORITHM.
    args = (
        os.urandom(32),
        {"id": rp_id_for("eddsa-raw"), "name": "eddsa-raw"},
        user("eddsa-raw"),
        [{"type": "public-key", "alg": EDDSA_ALG}],
    )
    with device() as dev:
        ctap2 = Ctap2(dev)
        if EDDSA_ALG in SUPPORTED_ALGS:
            att = ctap2.make_credential(*args)
            key = att.auth_data.credential_data.public_key
            expect(key.ALGORITHM == EDDSA_ALG, f"key {dict(key)}")
        else:
            expect_ctap_error(
                CtapError.ERR.UNSUPPORTED_ALGORITHM, ctap2.make_credential, *args
            )


@check
def webauthn_exclude_credentials():
    rp_id = rp_id_for("webauthn-exclude")
    server = make_server(rp_id)
    account = user("carol")
    with device() as dev:
        client = make_client(dev, rp_id)
        cred, _ = register(client, server, account)
        options, _ = server.register_begin(
            account, credentials=[cred], user_verification=UV
        )
        try:
            client.make_credential(options.public_key)
        except ClientError as e:
            expect(
                e.code == ClientError.ERR.DEVICE_INELIGIBLE,
                f"expected DEVICE_INELIGIBLE, got {e!r}",
            )
            return
        raise CheckFailed("registration with the credential excluded succeeded")


@check
def webauthn_discoverable_empty_allow_list():
    rp_id = rp_id_for("discoverable")
    server = make_server(rp_id)
    account = user("dave")
    with device() as dev:
        client = make_client(dev, rp_id)
        cred, _ = register(
            client,
            server,
            account,
            resident_key_requirement=ResidentKeyRequirement.REQUIRED,
        )
        results = authenticate(client, server, [cred], allow=False)
        expect(len(results) == 1, f"{len(results)} assertions, want 1")
        response, _ = results[0]
        expect(
            response.raw_id == cred.credential_id, "assertion for another credential"
        )
        handle = response.response.user_handle
        expect(
            handle == account["id"], f"userHandle {handle!r}, want {account['id']!r}"
        )


@check
def webauthn_two_discoverable_same_rp():
    rp_id = rp_id_for("two-discoverable")
    server = make_server(rp_id)
    accounts = [user("erin"), user("frank")]
    with device() as dev:
        client = make_client(dev, rp_id)
        creds = [
            register(
                client,
                server,
                a,
                resident_key_requirement=ResidentKeyRequirement.REQUIRED,
            )[0]
            for a in accounts
        ]
        # Fido2Client reads numberOfCredentials and calls getNextAssertion.
        results = authenticate(client, server, creds, allow=False)
        first = results[0][1]
        expect(
            first.number_of_credentials == 2,
            f"numberOfCredentials {first.number_of_credentials}, want 2",
        )
        got = {(r.raw_id, r.response.user_handle) for r, _ in results}
        want = {
            (c.credential_id, a["id"]) for c, a in zip(creds, accounts, strict=True)
        }
        expect(got == want, f"assertions for {got}, want {want}")


@check
def webauthn_attestation_direct_packed_self():
    rp_id = rp_id_for("attestation-direct")
    server = make_server(rp_id, attestation="direct")
    with device() as dev:
        client = make_client(dev, rp_id)
        cred, response = register(client, server, user("grace"))
    att = response.response.attestation_object
    client_data_hash = response.response.client_data.hash
    expect(att.fmt == "packed", f"fmt {att.fmt!r}, want 'packed'")
    expect("x5c" not in att.att_stmt, "x5c present: not self attestation")
    expect(
        att.att_stmt.get("alg") == ES256_ALG, f"attStmt.alg {att.att_stmt.get('alg')}"
    )
    result = PackedAttestation().verify(att.att_stmt, att.auth_data, client_data_hash)
    expect(
        result.attestation_type == AttestationType.SELF,
        f"attestation type {result.attestation_type!r}, want SELF",
    )


@check
def webauthn_attestation_none():
    rp_id = rp_id_for("attestation-none")
    server = make_server(rp_id, attestation="none")
    with device() as dev:
        client = make_client(dev, rp_id)
        cred, response = register(client, server, user("heidi"))
        authenticate(client, server, [cred])
    # The RP ignores attestation here; whatever came back must still verify.
    att = response.response.attestation_object
    verify_attestation(att, response.response.client_data.hash)


# --- U2F / CTAP1 ------------------------------------------------------------


@check
def u2f_version():
    with device() as dev:
        version = Ctap1(dev).get_version()
        expect(version == "U2F_V2", f"version {version!r}")


@check
def u2f_register():
    app_param = sha256(b"https://u2f-register.example")
    client_param = sha256(b"u2f client data " + os.urandom(8))
    with device() as dev:
        reg = with_presence(Ctap1(dev).register, client_param, app_param)
    expect(len(reg.public_key) == 65 and reg.public_key[0] == 0x04, "bad public key")
    expect(0 < len(reg.key_handle) <= 255, f"key handle of {len(reg.key_handle)} bytes")
    reg.verify(app_param, client_param)
    # The same response as a WebAuthn "fido-u2f" attestation, the way an RP
    # sees it when a browser talks U2F to the key.
    att = AttestationObject.from_ctap1(app_param, reg)
    FidoU2FAttestation().verify(att.att_stmt, att.auth_data, client_param)


@check
def u2f_attestation_certificate():
    with device() as dev:
        reg = register_u2f(Ctap1(dev), sha256(b"https://u2f-cert.example"))
    cert = x509.load_der_x509_certificate(reg.certificate)
    key = cert.public_key()
    expect(
        isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1",
        f"attestation key is {key!r}, want P-256",
    )
    verify_x509_chain([reg.certificate, reg.certificate])  # self-signed


@check
def u2f_authenticate_check_only():
    app_param = sha256(b"https://u2f-check-only.example")
    with device() as dev:
        ctap1 = Ctap1(dev)
        reg = register_u2f(ctap1, app_param)
        # 0x6985: key handle is valid for this appParam, presence would be needed.
        expect_apdu_error(
            APDU.USE_NOT_SATISFIED,
            ctap1.authenticate,
            os.urandom(32),
            app_param,
            reg.key_handle,
            True,
        )


@check
def u2f_authenticate():
    app_param = sha256(b"https://u2f-authenticate.example")
    with device() as dev:
        ctap1 = Ctap1(dev)
        reg = register_u2f(ctap1, app_param)
        counters = []
        for _ in range(2):
            client_param = sha256(os.urandom(32))
            sig = with_presence(
                ctap1.authenticate, client_param, app_param, reg.key_handle
            )
            expect(sig.user_presence & 0x01, f"user presence byte {sig.user_presence}")
            sig.verify(app_param, client_param, reg.public_key)
            counters.append(sig.counter)
        expect(counters[1] > counters[0], f"counter did not increase: {counters}")


@check
def u2f_wrong_key_handle():
    app_param = sha256(b"https://u2f-wrong-handle.example")
    with device() as dev:
        ctap1 = Ctap1(dev)
        reg = register_u2f(ctap1, app_param)
        bogus = os.urandom(len(reg.key_handle))
        for check_only in (True, False):
            expect_apdu_error(
                APDU.WRONG_DATA,
                ctap1.authenticate,
                os.urandom(32),
                app_param,
                bogus,
                check_only,
            )


@check
def u2f_wrong_app_param():
    # A key handle is bound to the appParam it was registered for.
    with device() as dev:
        ctap1 = Ctap1(dev)
        reg = register_u2f(ctap1, sha256(b"https://u2f-app-a.example"))
        expect_apdu_error(
            APDU.WRONG_DATA,
            ctap1.authenticate,
            os.urandom(32),
            sha256(b"https://u2f-app-b.example"),
            reg.key_handle,
            True,
        )


# --- Cross-protocol -----------------------------------------------------------


@check
def cross_u2f_credential_via_ctap2():
    # Registered over U2F with appParam = SHA-256(rp id), then used by a
    # WebAuthn RP over CTAP2 (rpIdHash == appParam, allowList = key handle).
    rp_id = rp_id_for("u2f-to-ctap2")
    app_param = sha256(rp_id.encode())
    server = make_server(rp_id)
    with device() as dev:
        reg = register_u2f(Ctap1(dev), app_param)
        cred = AttestedCredentialData.from_ctap1(reg.key_handle, reg.public_key)
        results = authenticate(make_client(dev, rp_id), server, [cred])
    response, assertion = results[0]
    expect(response.raw_id == reg.key_handle, "assertion for another credential")
    expect(assertion.auth_data.rp_id_hash == app_param, "rpIdHash != appParam")


@check
def cross_ctap2_credential_via_u2f():
    # Registered by a WebAuthn RP over CTAP2 (ES256, non-discoverable), then
    # used over U2F with appParam = SHA-256(rp id), the way python-fido2's own
    # CTAP1 client backend would, and verified by the same RP.
    rp_id = rp_id_for("ctap2-to-u2f")
    app_param = sha256(rp_id.encode())
    server = make_server(rp_id, algs=[ES256_ALG])
    with device() as dev:
        cred, _ = register(make_client(dev, rp_id), server, user("ivan"))
        ctap1 = Ctap1(dev)
        key_handle = cred.credential_id
        expect(len(key_handle) <= 255, f"credential id of {len(key_handle)} bytes")
        expect_apdu_error(
            APDU.USE_NOT_SATISFIED,
            ctap1.authenticate,
            os.urandom(32),
            app_param,
            key_handle,
            True,
        )
        options, state = server.authenticate_begin([cred], user_verification=UV)
        client_data = CollectedClientData.create(
            type=CollectedClientData.TYPE.GET,
            challenge=options.public_key.challenge,
            origin=origin_for(rp_id),
        )
        sig = with_presence(ctap1.authenticate, client_data.hash, app_param, key_handle)
    sig.verify(app_param, client_data.hash, u2f_public_key(cred.public_key))
    assertion = AssertionResponse.from_ctap1(
        app_param, {"type": "public-key", "id": key_handle}, sig
    )
    server.authenticate_complete(
        state,
        [cred],
        AuthenticationResponse(
            raw_id=key_handle,
            response=AuthenticatorAssertionResponse(
                client_data=client_data,
                authenticator_data=assertion.auth_data,
                signature=assertion.signature,
            ),
        ),
    )


# --- runner -----------------------------------------------------------------


def describe(e: BaseException) -> str:
    if isinstance(e, CheckFailed):
        return str(e)
    if isinstance(e, ApduError):
        return f"ApduError SW 0x{e.code:04X}"
    if isinstance(e, ClientError) and e.cause is not None:
        return f"ClientError {e.code.name} caused by {describe(e.cause)}"
    text = str(e) or repr(e)
    return f"{type(e).__name__}: {text}"


def main(argv: list[str]) -> int:
    global TARGET, SUPPORTED_ALGS
    usage = f"usage: {argv[0]} PORT | /dev/hidrawN [--algorithms es256[,eddsa]]"
    args = argv[1:]
    if len(args) == 3 and args[1] == "--algorithms":
        names = args[2].split(",")
        if not names or any(n not in ALG_NAMES for n in names):
            print(f"{usage} (unknown algorithm)", file=sys.stderr)
            return 2
        SUPPORTED_ALGS = [ALG_NAMES[n] for n in names]
        args = args[:1]
    problem = "missing target" if len(args) != 1 else targets.check_target(args[0])
    if problem:
        print(f"{usage} ({problem})", file=sys.stderr)
        return 2
    TARGET = args[0]
    print(
        f"python-fido2 {package_version('fido2')}, fido2d on {targets.describe(TARGET)}, "
        f"algorithms {SUPPORTED_ALGS}",
        flush=True,
    )

    passed = failed = 0
    for fn in CHECKS:
        name = fn.__name__
        try:
            fn()
        except Exception as e:
            failed += 1
            print(f"FAIL {name}: {describe(e)}", flush=True)
            print(f"--- {name} ---", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
        else:
            passed += 1
            print(f"PASS {name}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

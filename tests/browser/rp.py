#!/usr/bin/env python3
"""A local WebAuthn relying party on http://cNN.rp.localhost:PORT, built on py_webauthn (Duo Labs'
`webauthn` package from PyPI), with a stdlib HTTP server.

Usage: rp.py --port PORT --results FILE

Every cell of tests/browser/matrix.py has an origin of its own, http://cNN.rp.localhost:PORT
(Chromium and Firefox resolve *.localhost to the loopback address themselves and treat it as a
secure context). The page (www/rp.html) asks this server for options, calls
navigator.credentials.create()/get(), and posts the credential back; py_webauthn verifies the
attestation or assertion (challenge, origin, RP ID hash, flags, signature, counter), and this
server adds the checks a strict relying party makes for the options it asked for (the UV flag,
the algorithm, the attestation format, the discoverable credential, the user handle).

Each verdict is appended to FILE as one JSON line {"cell", "step", "client", "ok", "detail"}:
those lines, not what the page reports, are the test's results.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    bytes_to_base64url,
    decode_credential_public_key,
    parse_attestation_object,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorAttachment,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import matrix  # noqa: E402

WWW = os.path.join(os.path.dirname(os.path.abspath(__file__)), "www")


class Failed(Exception):
    pass


class RelyingParty:
    """The relying party's state: per cell, the outstanding challenge and the credential."""

    def __init__(self, port: int, results_path: str | None):
        self.port = port
        self.results_path = results_path
        self.lock = threading.Lock()
        # Keyed by (cell index, client): two clients may run the same cell one after the other.
        self.challenges: dict[tuple[int, str, str], bytes] = {}
        self.credentials: dict[tuple[int, str], dict] = {}

    def origin(self, cell: matrix.Cell) -> str:
        return f"http://{cell.rp_id}:{self.port}"

    def user_id(self, cell: matrix.Cell) -> bytes:
        return hashlib.sha256(f"user of {cell.name}".encode()).digest()[:16]

    # --- options -------------------------------------------------------------------------
    def registration_options(self, cell: matrix.Cell, client: str) -> dict:
        options = generate_registration_options(
            rp_id=cell.rp_id,
            rp_name="fido2d test RP " + cell.rp_id,
            user_id=self.user_id(cell),
            user_name=f"user{cell.index:02d}@fido2d.test",
            user_display_name=f"User {cell.index:02d}",
            attestation=AttestationConveyancePreference(cell.attestation),
            authenticator_selection=AuthenticatorSelectionCriteria(
                authenticator_attachment=AuthenticatorAttachment.CROSS_PLATFORM,
                resident_key=ResidentKeyRequirement(cell.rk),
                require_resident_key=cell.rk == "required",
                user_verification=UserVerificationRequirement(cell.uv),
            ),
            supported_pub_key_algs=[COSEAlgorithmIdentifier(a) for a in cell.alg_list],
            timeout=60000,
        )
        with self.lock:
            self.challenges[(cell.index, "register", client)] = options.challenge
        as_json = json.loads(options_to_json(options))
        # credProps tells the relying party whether the credential is discoverable.
        as_json["extensions"] = {"credProps": True}
        return as_json

    def authentication_options(self, cell: matrix.Cell, step: str, client: str) -> dict:
        stored = self.credentials.get((cell.index, client))
        if stored is None:
            raise Failed("no credential registered for this cell")
        allow = [] if step == "discover" else [PublicKeyCredentialDescriptor(id=stored["id"])]
        options = generate_authentication_options(
            rp_id=cell.rp_id,
            allow_credentials=allow,
            user_verification=UserVerificationRequirement(cell.uv),
            timeout=60000,
        )
        with self.lock:
            self.challenges[(cell.index, step, client)] = options.challenge
        return json.loads(options_to_json(options))

    # --- verification ----------------------------------------------------------------------
    def _challenge(self, cell: matrix.Cell, step: str, client: str) -> bytes:
        with self.lock:
            challenge = self.challenges.pop((cell.index, step, client), None)
        if challenge is None:
            raise Failed(f"no outstanding {step} challenge")
        return challenge

    def verify_registration(self, cell: matrix.Cell, client: str, credential: dict) -> str:
        challenge = self._challenge(cell, "register", client)
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=cell.rp_id,
            expected_origin=self.origin(cell),
            require_user_presence=True,
            require_user_verification=cell.uv == "required",
            supported_pub_key_algs=[COSEAlgorithmIdentifier(a) for a in cell.alg_list],
        )
        parsed = parse_registration_credential_json(credential)
        attestation = parse_attestation_object(parsed.response.attestation_object)
        alg = decode_credential_public_key(attestation.auth_data.attested_credential_data.credential_public_key).alg
        # The authenticator takes the first algorithm of the list that it supports, and fido2d
        # supports ES256 and EdDSA (WebAuthn §6.3.2 step 2 / CTAP 2.1 §6.1.2 step 3).
        if alg != cell.alg_list[0]:
            raise Failed(f"credential algorithm {alg}, expected {cell.alg_list[0]} (the RP's first choice)")
        self._check_uv(cell, "register", verified.user_verified)
        fmt = str(getattr(verified.fmt, "value", verified.fmt))
        # 'none': the RP does not care; browsers replace the statement with fmt none, other
        # clients (python-fido2) may pass the authenticator's on, and py_webauthn verified it.
        if cell.attestation == "none" and fmt not in ("none", "packed"):
            raise Failed(f"attestation 'none' asked, got fmt {fmt}")
        if cell.attestation == "direct":
            # py_webauthn verified the statement's signature; fido2d's own is packed self
            # attestation (signed by the credential key, no certificate).
            if fmt != "packed":
                raise Failed(f"attestation 'direct' asked, got fmt {fmt} (expected packed)")
            if attestation.att_stmt.x5c:
                raise Failed("packed attestation with a certificate: fido2d only does self attestation")
            if attestation.att_stmt.alg != alg:
                raise Failed(f"self attestation alg {attestation.att_stmt.alg} differs from the credential's {alg}")
        rk = (credential.get("clientExtensionResults") or {}).get("credProps", {}).get("rk")
        if cell.rk == "required" and rk is not True:
            raise Failed(f"residentKey required, credProps.rk = {rk!r}")
        if cell.rk == "discouraged" and rk is True:
            raise Failed("residentKey discouraged, yet the client made a discoverable credential")
        with self.lock:
            self.credentials[(cell.index, client)] = {
                "id": verified.credential_id,
                "public_key": verified.credential_public_key,
                "sign_count": verified.sign_count,
                "discoverable": rk is True,
            }
        return f"fmt {fmt}, alg {alg}, UV {int(verified.user_verified)}, rk {rk}, counter {verified.sign_count}"

    def verify_authentication(self, cell: matrix.Cell, step: str, client: str, credential: dict) -> str:
        challenge = self._challenge(cell, step, client)
        stored = self.credentials[(cell.index, client)]
        if credential.get("rawId") != bytes_to_base64url(stored["id"]):
            raise Failed("the assertion is for another credential")
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge,
            expected_rp_id=cell.rp_id,
            expected_origin=self.origin(cell),
            credential_public_key=stored["public_key"],
            credential_current_sign_count=stored["sign_count"],
            require_user_verification=cell.uv == "required",
        )
        self._check_uv(cell, step, verified.user_verified)
        handle = (credential.get("response") or {}).get("userHandle")
        if step == "discover" and handle != bytes_to_base64url(self.user_id(cell)):
            # Without allowCredentials the user handle is how the RP knows who signed in.
            raise Failed(f"discoverable sign-in returned user handle {handle!r}")
        with self.lock:
            stored["sign_count"] = verified.new_sign_count
        return f"UV {int(verified.user_verified)}, counter {verified.new_sign_count}, user handle {'yes' if handle else 'no'}"

    def _check_uv(self, cell: matrix.Cell, step: str, uv: bool):
        expected = cell.expected_uv(step)
        if expected is not None and uv != expected:
            raise Failed(f"UV flag {int(uv)}, expected {int(expected)} (userVerification {cell.uv}, PIN {'set' if cell.pin else 'unset'})")

    def record(self, cell: matrix.Cell, step: str, client: str, ok: bool, detail: str):
        line = json.dumps({"cell": cell.name, "index": cell.index, "step": step, "client": client,
                           "ok": ok, "detail": detail})
        with self.lock:
            if self.results_path:
                with open(self.results_path, "a") as f:
                    f.write(line + "\n")
        print(("PASS " if ok else "FAIL ") + f"{client}/{cell.name}/{step}: {detail}", flush=True)


class Handler(BaseHTTPRequestHandler):
    rp: RelyingParty

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass

    def _send(self, status: int, body: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, value):
        self._send(status, json.dumps(value).encode(), "application/json")

    def do_GET(self):
        if self.path.split("?")[0] in ("/", "/rp.html"):
            with open(os.path.join(WWW, "rp.html"), "rb") as f:
                self._send(200, f.read(), "text/html; charset=utf-8")
        else:
            self._send(404, b"not found", "text/plain")

    def do_POST(self):
        try:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            cell = matrix.CELLS[int(request["cell"])]
        except (ValueError, KeyError, IndexError) as e:
            return self._json(400, {"error": f"bad request: {e}"})
        # The page must be the cell's own origin: the RP ID is derived from it.
        host = (self.headers.get("Host") or "").split(":")[0]
        if host != cell.rp_id:
            return self._json(400, {"error": f"cell {cell.index} belongs to {cell.rp_id}, not {host}"})
        rp = self.rp
        step, client = request.get("step"), request.get("client", "?")
        try:
            if self.path == "/options":
                if step == "register":
                    return self._json(200, rp.registration_options(cell, client))
                return self._json(200, rp.authentication_options(cell, step, client))
            if self.path == "/verify":
                if "error" in request:
                    raise Failed("the browser said " + request["error"])
                if step == "register":
                    detail = rp.verify_registration(cell, client, request["credential"])
                else:
                    detail = rp.verify_authentication(cell, step, client, request["credential"])
                rp.record(cell, step, client, True, detail)
                return self._json(200, {"ok": True, "detail": detail})
        except Exception as e:  # every refusal is a verdict, with py_webauthn's reason
            detail = f"{type(e).__name__}: {e}"
            if self.path == "/verify":
                rp.record(cell, step, client, False, detail)
            return self._json(200, {"ok": False, "detail": detail})
        return self._json(404, {"error": "no such endpoint"})


def serve(port: int, results: str | None) -> ThreadingHTTPServer:
    Handler.rp = RelyingParty(port, results)
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--results", default=None)
    args = parser.parse_args()
    server = serve(args.port, args.results)
    print(f"rp: listening on http://cNN.rp.localhost:{args.port}/ ({len(matrix.CELLS)} cells)", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

"""Firefox driven over Marionette, its built-in remote protocol (stdlib only, no geckodriver).

`firefox --marionette` listens on 127.0.0.1:PORT; each message is `LENGTH:JSON`, a command
`[0, id, "WebDriver:Name", params]` and its answer `[1, id, error, result]`. The WebDriver
commands are the ones geckodriver translates the W3C HTTP API into.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

FIREFOX = "/usr/bin/firefox-esr"

# user.js of the test profile: no first-run pages, no network, and the preference that lets
# 'direct' attestation through without the consent door-hanger a person would click ("the
# site wants to see your security key's make and model"; WebAuthnPromptHelper's
# attestation-consent prompt, which no WebDriver command answers).
PREFS = {
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.aboutwelcome.enabled": False,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "extensions.update.enabled": False,
    "remote.prefs.recommended": True,
    "security.webauthn.always_allow_direct_attestation": True,
}


class Firefox:
    def __init__(self, log_path: str, port: int = 2828, headless: bool = True):
        self.profile = tempfile.mkdtemp(prefix="fido2d-firefox-")
        with open(os.path.join(self.profile, "user.js"), "w") as f:
            for name, value in PREFS.items():
                f.write(f"user_pref({json.dumps(name)}, {json.dumps(value)});\n")
            f.write(f"user_pref(\"marionette.port\", {port});\n")
        flags = [FIREFOX, "--marionette", "--no-remote", "--profile", self.profile]
        if headless:
            flags.append("--headless")
        self.log = open(log_path, "ab")
        # authenticator-rs, Firefox's CTAP stack, logs the devices it finds and what it sends.
        env = dict(os.environ, MOZ_LOG="authenticator:4,authrs_bridge:4,webauthnmanager:4")
        self.process = subprocess.Popen(flags, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, env=env)
        self.sock = self._connect(port)
        self._buffer = b""
        self._next_id = 0
        self._read_message()  # the greeting: {"applicationType": "gecko", "marionetteProtocol": 3}

    def _connect(self, port: int) -> socket.socket:
        deadline = time.monotonic() + 300
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"Firefox exited with {self.process.returncode} before Marionette listened")
            try:
                return socket.create_connection(("127.0.0.1", port), timeout=5)
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _read_message(self, timeout: float = 120):
        self.sock.settimeout(timeout)
        while b":" not in self._buffer:
            self._buffer += self._recv()
        length, rest = self._buffer.split(b":", 1)
        while len(rest) < int(length):
            rest += self._recv()
        message, self._buffer = rest[: int(length)], rest[int(length):]
        return json.loads(message)

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise RuntimeError(f"Firefox closed Marionette (exit {self.process.poll()})")
        return chunk

    def send(self, command: str, params: dict | None = None, timeout: float = 120):
        self._next_id += 1
        body = json.dumps([0, self._next_id, command, params or {}]).encode()
        self.sock.sendall(str(len(body)).encode() + b":" + body)
        while True:
            kind, ident, error, result = self._read_message(timeout)
            if kind == 1 and ident == self._next_id:
                break
        if error:
            raise RuntimeError(f"{command}: {error.get('error')}: {error.get('message')}")
        return result

    def start_session(self) -> dict:
        caps = self.send("WebDriver:NewSession", {"capabilities": {"alwaysMatch": {}}}, timeout=300)
        self.send("WebDriver:SetTimeouts", {"script": 180000, "pageLoad": 120000})
        return caps["capabilities"]

    def navigate(self, url: str):
        self.send("WebDriver:Navigate", {"url": url})

    def evaluate(self, expression: str, timeout: float = 180):
        """The value of a JS expression in the page; a promise is awaited (WebDriver's Execute
        Script does that)."""
        return self.send("WebDriver:ExecuteScript", {"script": f"return {expression};", "args": []},
                         timeout=timeout).get("value")

    def close(self):
        try:
            self.send("Marionette:Quit", {"flags": ["eForceQuit"]}, timeout=30)
        except Exception:
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.sock.close()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def run(args, cells, relying_party):
    """The same ceremonies as run_matrix.run_chromium, in Firefox."""
    from run_matrix import ABORT_MS, steps_for

    t0 = time.monotonic()
    browser = Firefox(os.path.join(args.logs, "firefox.log"))
    try:
        caps = browser.start_session()
        print(f"browser: Firefox {caps.get('browserVersion')} (headless) ready in {time.monotonic() - t0:.1f} s",
              flush=True)
        for cell in cells:
            browser.navigate(f"http://{cell.rp_id}:{args.port}/")

            def ceremony(step):
                t1 = time.monotonic()
                verdict = browser.evaluate(f"runCeremony({cell.index}, '{step}', 'firefox', {ABORT_MS})",
                                           timeout=ABORT_MS / 1000 + 60)
                print(f"  {cell.name} {step}: {'ok' if verdict.get('ok') else 'FAILED'} in "
                      f"{time.monotonic() - t1:.2f} s: {verdict.get('detail')}", flush=True)
                return verdict.get("ok")

            if ceremony("register"):
                for step in steps_for(cell, relying_party, "firefox"):
                    ceremony(step)
    finally:
        browser.close()

"""Chromium driven over the DevTools protocol on --remote-debugging-pipe (stdlib only).

Chromium reads commands from fd 3 and writes answers and events to fd 4, each message a JSON
object ended by a NUL byte. No port, no websocket, no chromedriver: the browser is a child of
this process and dies with it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

# Chromium's own binaries from the Debian packages.
CHROMIUM = "/usr/lib/chromium/chromium"
HEADLESS_SHELL = "/usr/lib/chromium/chromium-headless-shell"

# What Chromium logs about its WebAuthn request flow and the HID devices it talks to; the PIN
# typist and a failure's log need these lines.
VMODULE = "device_event_log_impl=2,*webauthn*=1,*authenticator_request*=1"


class BrowserGone(Exception):
    pass


class Chromium:
    """One browser process. `kind` is 'headless-shell', 'headless-new' or 'headed' (a window on
    $DISPLAY, for Xvfb)."""

    def __init__(self, kind: str, log_path: str, extra_flags: list[str] | None = None):
        self.kind = kind
        self.profile = tempfile.mkdtemp(prefix="fido2d-chromium-")
        binary = HEADLESS_SHELL if kind == "headless-shell" else CHROMIUM
        flags = [
            binary,
            "--no-sandbox",  # root in the guest; the sandbox needs user namespaces it lacks
            "--disable-gpu",
            # Under qemu's TCG a software-rendered frame can take longer than the GPU watchdog
            # allows, and the watchdog then kills the GPU process (exit 11) until Chromium gives
            # up ("GPU process isn't usable"): no SwiftShader, no watchdog.
            "--disable-software-rasterizer",
            "--disable-gpu-watchdog",
            # Even so, under TCG --headless=new's GPU process often segfaults (exit 11) while it
            # draws the WebAuthn dialog; after its third crash Chromium aborts ("GPU process
            # isn't usable. Goodbye."), though every ceremony had passed. Let it restart instead.
            "--disable-gpu-process-crash-limit",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--password-store=basic",
            "--user-data-dir=" + self.profile,
            "--remote-debugging-pipe",
            "--enable-logging=stderr",
            "--v=0",
            "--vmodule=" + VMODULE,
            "--window-size=1000,800",
        ]
        if kind == "headless-new":
            flags.append("--headless=new")
        elif kind == "headed":
            flags += ["--ozone-platform=x11", "--window-position=0,0"]
        flags += extra_flags or []
        flags.append("about:blank")

        to_browser_r, to_browser_w = os.pipe()
        from_browser_r, from_browser_w = os.pipe()

        def pipes_on_3_and_4():
            # dup first: the pipe ends may themselves be fds 3 or 4.
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.log_path = log_path
        self.log = open(log_path, "ab")
        self._log_start = self.log.tell()  # this launch's part of a shared log
        self.process = subprocess.Popen(
            flags,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            preexec_fn=pipes_on_3_and_4,
            close_fds=False,
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._out = os.fdopen(to_browser_w, "wb", buffering=0)
        self._in = os.fdopen(from_browser_r, "rb", buffering=0)
        self._answers: dict[int, dict] = {}
        self._closed = False
        self._next_id = 0
        self._cv = threading.Condition()
        self._write_lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        buffer = b""
        while True:
            chunk = self._in.read(1 << 16)
            if not chunk:
                with self._cv:
                    self._closed = True
                    self._cv.notify_all()
                return
            buffer += chunk
            while b"\0" in buffer:
                message, buffer = buffer.split(b"\0", 1)
                decoded = json.loads(message)
                if "id" in decoded:
                    with self._cv:
                        self._answers[decoded["id"]] = decoded
                        self._cv.notify_all()

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = 120) -> dict:
        with self._cv:
            self._next_id += 1
            ident = self._next_id
        message = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        with self._write_lock:
            self._out.write(json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self._cv:
            while ident not in self._answers and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no answer to {method} within {timeout} s")
                self._cv.wait(min(left, 1))
            answer = self._answers.pop(ident, None)
        if answer is None:
            # Outside the lock: why_gone waits for the process to end.
            raise BrowserGone(f"Chromium closed its pipe during {method}: {self.why_gone()}")
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def why_gone(self) -> str:
        """How the process ended (it may still be on its way out when the pipe closes) and the
        last lines it logged, leaving out D-Bus noise: enough to tell a crash from an exit."""
        try:
            code = self.process.wait(timeout=15)
            status = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit {code}"
        except subprocess.TimeoutExpired:
            status = "still running 15 s after its pipe closed"
        except ValueError:
            status = f"exit {code}"
        self.log.flush()
        with open(self.log_path, "rb") as f:
            f.seek(self._log_start)
            lines = f.read().decode(errors="replace").splitlines()
        tail = [line for line in lines if "dbus" not in line and "device_event_log" not in line][-25:]
        return status + "; its log ends:\n    " + "\n    ".join(tail)

    def version(self) -> str:
        return self.send("Browser.getVersion", timeout=300)["product"]

    def open_tab(self, url: str) -> "Tab":
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        tab = Tab(self, target, session)
        tab.navigate(url)
        return tab

    def close(self):
        try:
            self.send("Browser.close", timeout=20)
        except Exception:
            pass
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Tab:
    def __init__(self, browser: Chromium, target: str, session: str):
        self.browser, self.target, self.session = browser, target, session
        browser.send("Runtime.enable", session=session)
        browser.send("Page.enable", session=session)

    def navigate(self, url: str, ready_function: str = "runCeremony"):
        self.browser.send("Page.navigate", {"url": url}, session=self.session)
        # The page before may still answer (it has the same function): the URL tells them apart.
        probe = f"location.href + ' ' + document.readyState + ' ' + (typeof window.{ready_function})"
        state = ""
        for _ in range(300):
            try:
                state = self.evaluate(probe, timeout=30)
            except RuntimeError as error:  # the old document went away between two probes
                state = str(error)
            if state == f"{url} complete function":
                return
            time.sleep(0.1)
        raise TimeoutError(f"{url} did not load (state {state!r})")

    def evaluate(self, expression: str, timeout: float = 120):
        """The value of a JS expression; a promise is awaited."""
        result = self.browser.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
            session=self.session,
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            raise RuntimeError("page exception: " + json.dumps(result["exceptionDetails"])[:800])
        return result["result"].get("value")

    def screenshot(self, path: str):
        import base64

        data = self.browser.send("Page.captureScreenshot", {"format": "png"}, session=self.session)["data"]
        with open(path, "wb") as f:
            f.write(base64.b64decode(data))

    def close(self):
        self.browser.send("Target.closeTarget", {"targetId": self.target})

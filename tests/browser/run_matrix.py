#!/usr/bin/env python3
"""Runs cells of the option matrix (matrix.py) in a real browser against the local relying party
(rp.py), with fido2d's virtual USB key as the only authenticator.

Usage: run_matrix.py --client CLIENT --results FILE [--cells LIST] [--logs DIR] [--port N]

CLIENT is headless-shell (chromium-headless-shell), headless-new (chromium --headless=new, Chrome's
real dialog flow), xvfb (chromium on the X server in $DISPLAY; xdotool types the PIN when
Chromium shows its PIN sheet), firefox (headless, over Marionette) or python-fido2 (its
Fido2Client on --device). LIST is cell indices ("0,3,7-9"; default: every cell
whose client is CLIENT). The relying party runs in this process; each verdict is one JSON
line in FILE (see rp.py). Exit status 0 when every ceremony was verified.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import matrix  # noqa: E402
import rp  # noqa: E402

# Milliseconds before a WebAuthn call is aborted. Generous: the guest is an emulated CPU, and a
# person typing a PIN in the dialog flow takes a few seconds too.
ABORT_MS = 60000


def parse_cells(text: str | None, client: str) -> list[matrix.Cell]:
    if not text:
        return [c for c in matrix.CELLS if client in c.clients]
    chosen = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            chosen += range(int(a), int(b) + 1)
        elif part:
            chosen.append(int(part))
    return [matrix.CELLS[i] for i in chosen]


def steps_for(cell: matrix.Cell, rp_state: rp.RelyingParty, client: str) -> list[str]:
    """The sign-ins after a registration: with allowCredentials, then without it when the
    credential is discoverable."""
    steps = ["login"]
    stored = rp_state.credentials.get((cell.index, client))
    if stored and stored["discoverable"]:
        steps.append("discover")
    return steps


class PinTypist:
    """Watches Chromium's log for its PIN sheets and types as a person would, with xdotool on
    the X display: the PIN and Enter on "Enter your PIN" (kClientPinEntry); the new PIN, Tab,
    the PIN again and Enter on "Create a PIN" (kClientPinSetup)."""

    SHEETS = {"UI step: kClientPinEntry": "entry", "UI step: kClientPinSetup": "setup",
              "UI step: kSelectAccount": "account"}

    def __init__(self, chrome_log: str, pin: str, transcript, shots: str | None = None):
        self.chrome_log, self.pin, self.transcript, self.shots = chrome_log, pin, transcript, shots
        self.typed = {"entry": 0, "setup": 0, "account": 0}
        self.shot_count = 0
        self.stop = threading.Event()
        threading.Thread(target=self._watch, daemon=True).start()

    def _xdotool(self, *args):
        subprocess.run(["xdotool", *args], check=True, timeout=30)

    def _watch(self):
        offset = 0
        while not self.stop.is_set():
            try:
                with open(self.chrome_log, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            except FileNotFoundError:
                chunk = b""
            # Only whole lines: a marker cut in two would be missed.
            end = chunk.rfind(b"\n") + 1
            offset += end
            for line in chunk[:end].decode(errors="replace").splitlines():
                for marker, sheet in self.SHEETS.items():
                    if marker in line:
                        self._answer(sheet)
            time.sleep(0.2)

    def screenshot(self, what: str):
        """The whole X screen, dialogs included, for a failure's log (when xwd is there)."""
        if not self.shots or not shutil.which("xwd"):
            return
        self.shot_count += 1
        path = os.path.join(self.shots, f"xvfb-{self.shot_count:03d}-{what}.xwd")
        with open(path, "wb") as f:
            subprocess.run(["xwd", "-root", "-silent"], stdout=f, timeout=30)

    def _answer(self, sheet: str):
        time.sleep(1.0)  # the sheet is logged before it is drawn and focused
        self.screenshot(sheet)
        if sheet == "account":
            self._xdotool("key", "Return")
        elif sheet == "entry":
            self._xdotool("type", "--delay", "30", self.pin)
        else:
            self._xdotool("type", "--delay", "30", self.pin)
            self._xdotool("key", "Tab")
            self._xdotool("type", "--delay", "30", self.pin)
        self._xdotool("key", "Return")
        self.typed[sheet] += 1
        print(f"typist: PIN {sheet} sheet answered", file=self.transcript, flush=True)


# Chromium under qemu's TCG now and then goes away mid-run (a crashed GPU or browser process): a
# crash of the browser, not an answer of the key. It is relaunched and the step redone, this
# many times a run at most.
RELAUNCHES = 3


def run_chromium(args, cells: list[matrix.Cell], relying_party: rp.RelyingParty) -> None:
    import cdp

    kind = {"headless-shell": "headless-shell", "headless-new": "headless-new", "xvfb": "headed"}[args.client]
    chrome_log = os.path.join(args.logs, f"chromium-{args.label}.log")
    typist = PinTypist(chrome_log, matrix.PIN, sys.stdout, args.logs) if args.client == "xvfb" else None
    browser = None
    relaunches = 0

    def went_away(gone: Exception, during: str):
        nonlocal relaunches, browser
        print(f"browser: Chromium went away during {during} ({gone})", flush=True)
        if relaunches == RELAUNCHES:
            raise gone
        relaunches += 1
        print(f"browser: relaunch {relaunches} of {RELAUNCHES}", flush=True)
        browser.close()
        browser = None

    # One tab for the run, navigated from cell to cell (one site: see matrix.py): a new tab or a
    # new site's renderer under TCG costs seconds (headed: ~10 s), more than most ceremonies.
    tab, tabs, loads, load_seconds = None, 0, 0, 0.0
    try:
        for cell in cells:
            steps = ["register"]
            url = f"http://{cell.rp_id}:{args.port}/"
            loaded = False
            while steps:
                step = steps[0]
                try:
                    if browser is None:
                        t0 = time.monotonic()
                        browser = cdp.Chromium(kind, chrome_log)
                        print(f"browser: {browser.version()} ({args.client}) ready in {time.monotonic() - t0:.1f} s",
                              flush=True)
                        tab = None
                    if not loaded:
                        t0 = time.monotonic()
                        if tab is None:
                            tab, tabs = browser.open_tab(url), tabs + 1
                        else:
                            tab.navigate(url)
                        loads, load_seconds = loads + 1, load_seconds + time.monotonic() - t0
                        loaded = True
                    ok = ceremony(tab, cell, step, args.label)
                    if not ok:  # an error sheet of Chrome's may stay up: the next step gets a fresh tab
                        tab.close()
                        tab, loaded = None, False
                except cdp.BrowserGone as gone:
                    went_away(gone, f"{cell.name} {step}")
                    loaded = False
                    continue
                steps.pop(0)
                if step == "register" and ok:
                    steps += steps_for(cell, relying_party, args.label)
        print(f"browser: {loads} pages loaded in {load_seconds:.1f} s ({tabs} tabs)", flush=True)
    finally:
        if typist:
            typist.stop.set()
        if browser:
            t0 = time.monotonic()
            browser.close()
            print(f"browser: closed in {time.monotonic() - t0:.1f} s", flush=True)


def ceremony(tab, cell: matrix.Cell, step: str, client: str) -> bool:
    t0 = time.monotonic()
    verdict = tab.evaluate(f"runCeremony({cell.index}, '{step}', '{client}', {ABORT_MS})", timeout=ABORT_MS / 1000 + 60)
    print(f"  {cell.name} {step}: {'ok' if verdict.get('ok') else 'FAILED'} in {time.monotonic() - t0:.2f} s: {verdict.get('detail')}",
          flush=True)
    return bool(verdict.get("ok"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", required=True, choices=["headless-shell", "headless-new", "xvfb", "firefox", "python-fido2"])
    parser.add_argument("--device", help="python-fido2: the hidraw node (or fido2d's UDP port)")
    parser.add_argument("--cells")
    parser.add_argument("--label", help="the name its verdicts are recorded under (default: CLIENT)")
    parser.add_argument("--results", required=True)
    parser.add_argument("--logs", default=".")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()

    args.label = args.label or args.client
    cells = parse_cells(args.cells, args.client)
    server = rp.serve(args.port, args.results)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    relying_party = rp.Handler.rp
    t0 = time.monotonic()
    if args.client == "firefox":
        import marionette

        marionette.run(args, cells, relying_party)
    elif args.client == "python-fido2":
        import fido2_client

        fido2_client.run(args, cells, relying_party)
    else:
        run_chromium(args, cells, relying_party)
    server.shutdown()
    print(f"{args.client}: {len(cells)} cells in {time.monotonic() - t0:.1f} s", flush=True)
    sys.exit(verdict(args.results, args.label, cells))


def verdict(results: str, client: str, cells: list[matrix.Cell]) -> int:
    """0 when every cell of this client has a verified registration and no ceremony failed."""
    import json

    lines = [json.loads(line) for line in open(results)] if os.path.exists(results) else []
    mine = [v for v in lines if v["client"] == client]
    failed = [v for v in mine if not v["ok"]]
    registered = {v["index"] for v in mine if v["ok"] and v["step"] == "register"}
    missing = [c.name for c in cells if c.index not in registered]
    for v in failed:
        print(f"FAILED {v['cell']}/{v['step']}: {v['detail']}")
    if missing:
        print(f"no verified registration: {', '.join(missing)}")
    print(f"{client}: {len(mine) - len(failed)} ceremonies verified, {len(failed)} failed")
    return 1 if failed or missing else 0


if __name__ == "__main__":
    main()

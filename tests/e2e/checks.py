"""The check runner the python-fido2 suites share (pin.py, ctap23.py, strict_ctap.py): a
check is a function that raises on a broken expectation; each prints one PASS/FAIL line,
which the Rust side (tests/harness/lib.rs: run_e2e_script) reports."""

from __future__ import annotations

import sys
import traceback
from typing import Callable

from fido2.ctap import CtapError


class CheckFailed(Exception):
    """A check's expectation did not hold."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailed(message)


def expect_ctap_error(code: CtapError.ERR, fn: Callable, *args, **kwargs) -> None:
    """`fn(*args, **kwargs)` must fail with exactly the CTAP status `code`."""
    try:
        fn(*args, **kwargs)
    except CtapError as e:
        expect(e.code == code, f"expected {code.name}, got {CtapError(e.code)}")
        return
    raise CheckFailed(f"expected {code.name}, but the command succeeded")


def describe(e: BaseException) -> str:
    if isinstance(e, CheckFailed):
        return str(e)
    return f"{type(e).__name__}: {e}"


def run(checks) -> int:
    """Runs `(name, fn)` checks in order; one PASS/FAIL line each, then the totals. The exit
    status: 1 if any failed."""
    passed = failed = 0
    for name, fn in checks:
        try:
            fn()
        except Exception as e:
            failed += 1
            print(f"FAIL {name}: {describe(e)}", flush=True)
            traceback.print_exc(file=sys.stderr)
        else:
            passed += 1
            print(f"PASS {name}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0

#!/usr/bin/env python3
"""Median time of one CTAP2 getAssertion, as python-fido2 sees it, over a UDP port or hidraw.

Usage: python3 tests/e2e/assert_latency.py TARGET [N]      (fido2d with --presence auto-approve)

Makes one ES256 credential, then times N getAssertion calls with it in the allowList (user
presence requested, as `fido2-assert -G -p` does) on one open device: the CTAPHID round trips
and the authenticator's work, without process start-up. Prints one line with the median.
"""

from __future__ import annotations

import os
import statistics
import sys
import time

from fido2.ctap2 import Ctap2

import targets


def main(argv: list[str]) -> int:
    problem = "missing target" if len(argv) not in (2, 3) else targets.check_target(argv[1])
    if problem:
        print(f"usage: {argv[0]} PORT|/dev/hidrawN [N] ({problem})", file=sys.stderr)
        return 2
    target, count = argv[1], int(argv[2]) if len(argv) == 3 else 30
    dev = targets.open_device(target)
    try:
        ctap2 = Ctap2(dev)
        rp_id = f"latency.{os.urandom(3).hex()}.fido2d.test"
        att = ctap2.make_credential(
            os.urandom(32),
            {"id": rp_id, "name": rp_id},
            {"id": os.urandom(16), "name": "latency"},
            [{"type": "public-key", "alg": -7}],
        )
        allow = [{"type": "public-key", "id": att.auth_data.credential_data.credential_id}]
        times = []
        for _ in range(count):
            start = time.perf_counter()
            ctap2.get_assertion(rp_id, os.urandom(32), allow)
            times.append(time.perf_counter() - start)
    finally:
        dev.close()
    ms = sorted(t * 1000 for t in times)
    print(
        f"getAssertion over {targets.describe(target)}: median {statistics.median(ms):.2f} ms "
        f"(min {ms[0]:.2f}, max {ms[-1]:.2f}, n={count})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

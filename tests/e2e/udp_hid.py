"""CTAPHID over UDP for python-fido2 (2.2.x).

fido2d's UDP transport follows the Solo simulator convention: every datagram
carries exactly one 64-byte HID report, in both directions, and the daemon
answers to the source address of the datagram it got.  This module plugs that
into python-fido2 by implementing its ``CtapHidConnection`` interface, so the
library's own ``CtapHidDevice`` does the CTAPHID framing (INIT, channels,
continuation packets, keepalives) exactly as it would over a real HID device.
"""

from __future__ import annotations

import itertools
import os
import socket
import time

from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection, HidDescriptor

HOST = "127.0.0.1"
REPORT_SIZE = 64

# Set to a directory, every connection writes its traffic there (one file per
# connection, a line per report: "> ms hex" host to device, "< ms hex" device to
# host).  fuzz/tools/seeds.py turns such traces into the fuzzers' seed corpora.
TRACE_DIR = os.environ.get("FIDO2D_TRACE_DIR")
_trace_numbers = itertools.count()

# Seconds to wait for one report before giving up.  Keepalives from the daemon
# count as reports, so this only fires when the daemon is dead or wedged.
DEFAULT_TIMEOUT = float(os.environ.get("FIDO2D_E2E_TIMEOUT", "5"))


class UdpCtapHidConnection(CtapHidConnection):
    """One UDP socket to the daemon; one datagram per 64-byte HID report."""

    def __init__(self, port: int, host: str = HOST, timeout: float = DEFAULT_TIMEOUT):
        self.address = (host, port)
        self.timeout = timeout
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # connect() pins the peer: recv() only returns the daemon's datagrams,
        # and a closed port surfaces as ConnectionRefusedError instead of a hang.
        self._sock.connect(self.address)
        self._sock.settimeout(timeout)
        self._trace = None
        if TRACE_DIR:
            name = f"{os.getpid()}-{next(_trace_numbers):04d}.trace"
            self._trace = open(os.path.join(TRACE_DIR, name), "w")
            self._start = time.monotonic()

    def _record(self, direction: str, data: bytes) -> None:
        if self._trace:
            ms = int((time.monotonic() - self._start) * 1000)
            self._trace.write(f"{direction} {ms} {data.hex()}\n")

    def write_packet(self, data: bytes) -> None:
        if len(data) != REPORT_SIZE:
            raise ValueError(f"HID report must be {REPORT_SIZE} bytes, got {len(data)}")
        self._record(">", data)
        sent = self._sock.send(data)
        if sent != len(data):
            raise OSError(f"short UDP send: {sent} of {len(data)} bytes")

    def read_packet(self) -> bytes:
        try:
            data = self._sock.recv(2048)
        except socket.timeout:
            raise TimeoutError(
                f"no CTAPHID report from {self.address[0]}:{self.address[1]} "
                f"within {self.timeout} s (daemon dead or stuck?)"
            ) from None
        if len(data) != REPORT_SIZE:
            raise OSError(
                f"expected a {REPORT_SIZE}-byte HID report per datagram, "
                f"got {len(data)} bytes"
            )
        self._record("<", data)
        return data

    def close(self) -> None:
        if self._trace:
            self._trace.close()
            self._trace = None
        self._sock.close()


def descriptor(port: int, host: str = HOST) -> HidDescriptor:
    return HidDescriptor(
        path=f"udp:{host}:{port}",
        vid=0,
        pid=0,
        report_size_in=REPORT_SIZE,
        report_size_out=REPORT_SIZE,
        product_name="fido2d (CTAPHID over UDP)",
        serial_number=None,
    )


def open_udp_device(
    port: int, host: str = HOST, timeout: float = DEFAULT_TIMEOUT
) -> CtapHidDevice:
    """Open a CtapHidDevice talking to fido2d on host:port.

    The CtapHidDevice constructor sends CTAPHID_INIT on the broadcast channel and
    allocates a channel, so this fails (rather than hangs) if nobody answers.
    """
    conn = UdpCtapHidConnection(port, host, timeout)
    try:
        return CtapHidDevice(descriptor(port, host), conn)
    except BaseException:
        conn.close()
        raise

"""Where the end-to-end scripts find fido2d: a UDP port or a hidraw node.

A target is given on the command line as either
  PORT              fido2d --transport udp on 127.0.0.1:PORT (tests/e2e/udp_hid.py), or
  /dev/hidrawN      fido2d --transport uhid, through the kernel: python-fido2's own Linux
                    hidraw connection and CtapHidDevice, exactly as it talks to a USB key.
"""

from __future__ import annotations

import os
import select

import fido2.hid
from fido2.hid import CtapHidDevice
from fido2.hid.base import CtapHidConnection

from udp_hid import UdpCtapHidConnection, descriptor as udp_descriptor, open_udp_device

# Seconds one read may take on a shared connection (keepalives count as reports).
READ_TIMEOUT = float(os.environ.get("FIDO2D_E2E_TIMEOUT", "5"))


def is_hidraw(target: str) -> bool:
    return target.startswith("/dev/")


def check_target(target: str) -> str | None:
    """None if `target` is usable, else why not."""
    if is_hidraw(target):
        return None if os.path.exists(target) else f"{target} does not exist"
    if target.isdigit() and 0 < int(target) < 65536:
        return None
    return f"{target!r} is neither a UDP port nor a /dev/hidraw path"


def describe(target: str) -> str:
    return target if is_hidraw(target) else f"UDP 127.0.0.1:{target}"


def open_device(target: str) -> CtapHidDevice:
    """python-fido2's CtapHidDevice on the target (the only handle open on it)."""
    if is_hidraw(target):
        return fido2.hid.open_device(target)
    return open_udp_device(int(target))


class OwnChannelConnection(CtapHidConnection):
    """A connection that only returns reports addressed to its device's channel.

    On Linux every open handle of a hidraw node receives every input report of the device, so
    two clients on one key see each other's answers; libfido2 and browsers skip reports of other
    channels, python-fido2 stops at them ("Wrong channel"). Wrapping its connection in this lets
    two python-fido2 CtapHidDevices share one key the way two independent programs would. Reads
    also time out, so a wedged daemon fails a test instead of hanging it.
    """

    def __init__(self, inner: CtapHidConnection, fd: int | None):
        self.inner = inner
        self.fd = fd
        self.channel = lambda: 0xFFFFFFFF

    def write_packet(self, data: bytes) -> None:
        self.inner.write_packet(data)

    def read_packet(self) -> bytes:
        while True:
            if self.fd is not None:
                ready, _, _ = select.select([self.fd], [], [], READ_TIMEOUT)
                if not ready:
                    raise TimeoutError(f"no report within {READ_TIMEOUT} s")
            packet = self.inner.read_packet()
            if int.from_bytes(packet[:4], "big") == self.channel():
                return packet

    def close(self) -> None:
        self.inner.close()


class SharedCtapHidDevice(CtapHidDevice):
    """A CtapHidDevice that shares its key with other clients (see OwnChannelConnection)."""

    def __init__(self, descriptor, connection: OwnChannelConnection):
        connection.channel = lambda: self._channel_id
        super().__init__(descriptor, connection)


def open_shared_device(target: str) -> SharedCtapHidDevice:
    """One of several concurrent clients of the target, on a channel of its own."""
    if is_hidraw(target):
        descriptor = fido2.hid.get_descriptor(target)
        inner = fido2.hid.open_connection(descriptor)
        connection = OwnChannelConnection(inner, inner.handle)
    else:
        port = int(target)
        descriptor = udp_descriptor(port)
        # Each UDP client has its own socket: fido2d answers each channel to its sender.
        connection = OwnChannelConnection(UdpCtapHidConnection(port, timeout=READ_TIMEOUT), None)
    try:
        return SharedCtapHidDevice(descriptor, connection)
    except BaseException:
        connection.close()
        raise

#!/usr/bin/env python3
"""A uhid device that is not fido2d's, for the snap group of the VM tier.

    uhid_device.py --uniq U [--name N] [--vid 0x1209] [--pid 0x0001] [--descriptor fido|vendor]

Writes UHID_CREATE2 to /dev/uhid (include/uapi/linux/uhid.h) with the given name, USB vendor
and product ID and report descriptor, prints the device's hidraw node once the kernel made it
("ready /dev/hidrawN"), and keeps the device until it is killed (closing /dev/uhid destroys it).
`fido` is fido2d's descriptor (usage page 0xF1D0, 64-byte reports); `vendor` the same reports
under a vendor-defined usage page, which systemd's fido_id does not take for a FIDO token.
"""

import argparse
import glob
import os
import signal
import struct
import sys
import time

UHID_CREATE2 = 11
BUS_USB = 0x03

# Usage page, usage, collection, then a 64-byte input and a 64-byte output report.
REPORTS = bytes.fromhex(
    "a101" "0920150026ff00750895408102" "0921150026ff00750895409102" "c0"
)
DESCRIPTORS = {
    "fido": bytes.fromhex("06d0f10901") + REPORTS,
    "vendor": bytes.fromhex("0600ff0901") + REPORTS,
}


def create2(name, uniq, vid, pid, descriptor):
    # struct uhid_create2_req: name[128] phys[64] uniq[64] rd_size:u16 bus:u16 vendor:u32
    # product:u32 version:u32 country:u32 rd_data[4096], after the event's u32 type.
    return struct.pack(
        "=I128s64s64sHHIIII4096s",
        UHID_CREATE2,
        name.encode(),
        b"fido2d-tests/uhid_device.py",
        uniq.encode(),
        len(descriptor),
        BUS_USB,
        vid,
        pid,
        0,
        0,
        descriptor,
    )


def hidraw_of(uniq):
    for uevent in glob.glob("/sys/class/hidraw/hidraw*/device/uevent"):
        try:
            with open(uevent) as f:
                if f"HID_UNIQ={uniq}\n" in f.read():
                    return "/dev/" + uevent.split("/")[4]
        except OSError:
            pass
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--uniq", required=True)
    parser.add_argument("--name", default="another uhid device")
    parser.add_argument("--vid", type=lambda s: int(s, 0), default=0x1209)
    parser.add_argument("--pid", type=lambda s: int(s, 0), default=0x0001)
    parser.add_argument("--descriptor", choices=sorted(DESCRIPTORS), default="fido")
    args = parser.parse_args()

    fd = os.open("/dev/uhid", os.O_RDWR | os.O_CLOEXEC)
    os.write(fd, create2(args.name, args.uniq, args.vid, args.pid, DESCRIPTORS[args.descriptor]))
    deadline = time.monotonic() + 10
    node = None
    while node is None and time.monotonic() < deadline:
        node = hidraw_of(args.uniq)
        if node is None:
            time.sleep(0.05)
    if node is None:
        sys.exit(f"no hidraw node with HID_UNIQ={args.uniq} within 10 s")
    print(f"ready {node}", flush=True)
    # The kernel queues its events (start, open, close, output reports) for us; unread, they
    # are dropped once its queue is full, which does the device no harm.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


if __name__ == "__main__":
    main()

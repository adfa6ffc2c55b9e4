#!/usr/bin/env python3
"""A stand-in for BlueZ on a private D-Bus bus, for the offline hybrid tests.

It plays both ends of the radio:
- the authenticator's side: an adapter (org.bluez.Adapter1) with org.bluez.LEAdvertisingManager1,
  so fido2d's real RegisterAdvertisement call lands here;
- the initiator's side: while an advert is registered, a remote device
  (org.bluez.Device1) carries its service data, re-announced like a repeating advert, which
  btleplug (the initiators' scanner) receives as PropertiesChanged.

Every registered advert is written as one JSON line to the file named by FAKE_BLUEZ_LOG
(time, object path, type, service UUIDs, service data, local name), so a test can check
what fido2d put on air. FAKE_BLUEZ_POWERED=0 shows a switched-off adapter;
FAKE_BLUEZ_NO_ADAPTER=1 shows no adapter at all.

Run with DBUS_SYSTEM_BUS_ADDRESS pointing at the private bus (dbus-next connects there).
"""
import asyncio
import json
import os
import sys
import time

from dbus_next import BusType, Message, MessageType, Variant
from dbus_next.aio import MessageBus
from dbus_next.service import PropertyAccess, ServiceInterface, dbus_property, method

ADAPTER_PATH = "/org/bluez/hci0"
PEER_PATH = ADAPTER_PATH + "/dev_7A_11_22_33_44_55"
BASE_UUID_TAIL = "-0000-1000-8000-00805f9b34fb"
REPEAT_SECONDS = 0.25


def full_uuid(text):
    """BlueZ accepts 16-, 32- and 128-bit UUID strings: compare them in full form."""
    text = text.lower()
    if len(text) == 4:
        return "0000" + text + BASE_UUID_TAIL
    if len(text) == 8:
        return text + BASE_UUID_TAIL
    return text


def say(*words):
    print("[fake-bluez]", *words, file=sys.stderr, flush=True)


class Adapter(ServiceInterface):
    def __init__(self, powered):
        super().__init__("org.bluez.Adapter1")
        self.powered = powered
        self.discovering = False

    @method()
    def StartDiscovery(self):
        self.discovering = True
        self.emit_properties_changed({"Discovering": True})

    @method()
    def StopDiscovery(self):
        self.discovering = False
        self.emit_properties_changed({"Discovering": False})

    @method()
    def SetDiscoveryFilter(self, properties: "a{sv}"):
        pass

    @method()
    def RemoveDevice(self, device: "o"):
        pass

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> "s":
        return "00:AA:BB:CC:DD:01"

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> "s":
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> "s":
        return "fake0"

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> "s":
        return "fake0"

    @dbus_property(access=PropertyAccess.READ)
    def Modalias(self) -> "s":
        return "usb:v1D6Bp0246d0540"

    @dbus_property()
    def Powered(self) -> "b":
        return self.powered

    @Powered.setter
    def Powered(self, value: "b"):
        self.powered = value

    @dbus_property(access=PropertyAccess.READ)
    def Discovering(self) -> "b":
        return self.discovering


class Peer(ServiceInterface):
    """The advertiser as a scanner sees it."""

    def __init__(self):
        super().__init__("org.bluez.Device1")
        self.service_data = {}
        self.uuids = []

    def show(self, service_data, uuids):
        self.service_data = service_data
        self.uuids = uuids
        self.emit_properties_changed({"ServiceData": service_data, "UUIDs": uuids})

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> "s":
        return "7A:11:22:33:44:55"

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> "s":
        return "random"

    @dbus_property(access=PropertyAccess.READ)
    def Adapter(self) -> "o":
        return ADAPTER_PATH

    @dbus_property(access=PropertyAccess.READ)
    def Paired(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Connected(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def ServicesResolved(self) -> "b":
        return False

    # bluez-async refuses a device without these three, and btleplug then drops its events.
    @dbus_property(access=PropertyAccess.READ)
    def Trusted(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Blocked(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def LegacyPairing(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def RSSI(self) -> "n":
        return -50

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> "as":
        return self.uuids

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> "a{sv}":
        return self.service_data


class AdvertisingManager:
    """org.bluez.LEAdvertisingManager1 on the adapter, answered at the message level because
    registering needs the caller's name to read its advert object back."""

    def __init__(self, bus, peer, log_path):
        self.bus = bus
        self.peer = peer
        self.log_path = log_path
        self.active = {}  # (sender, path) -> repeating task

    def handle(self, msg):
        if msg.path != ADAPTER_PATH or msg.interface != "org.bluez.LEAdvertisingManager1":
            return None
        if msg.member == "RegisterAdvertisement":
            asyncio.ensure_future(self.register(msg))
            return True
        if msg.member == "UnregisterAdvertisement":
            self.unregister(msg.sender, msg.body[0])
            return Message.new_method_return(msg)
        return None

    async def register(self, msg):
        sender, path = msg.sender, msg.body[0]
        reply = await self.bus.call(Message(
            destination=sender, path=path, interface="org.freedesktop.DBus.Properties",
            member="GetAll", signature="s", body=["org.bluez.LEAdvertisement1"]))
        if reply.message_type != MessageType.METHOD_RETURN:
            self.bus.send(Message.new_error(msg, "org.bluez.Error.InvalidArguments",
                                            "cannot read the advertisement"))
            return
        props = {k: v.value for k, v in reply.body[0].items()}
        service_data = {full_uuid(k): bytes(v.value) for k, v in props.get("ServiceData", {}).items()}
        uuids = [full_uuid(u) for u in props.get("ServiceUUIDs", [])]
        record = {
            "event": "register",
            "time": time.time(),
            "path": path,
            "type": props.get("Type"),
            "service_uuids": uuids,
            "service_data": {k: v.hex() for k, v in service_data.items()},
            "local_name": props.get("LocalName"),
            "includes": props.get("Includes", []),
        }
        self.log(record)
        say("advert registered", json.dumps(record))
        variant_data = {k: Variant("ay", v) for k, v in service_data.items()}
        self.active[(sender, path)] = asyncio.ensure_future(self.repeat(variant_data, uuids))
        self.bus.send(Message.new_method_return(msg))

    async def repeat(self, service_data, uuids):
        while True:
            self.peer.show(service_data, uuids)
            await asyncio.sleep(REPEAT_SECONDS)

    def unregister(self, sender, path):
        task = self.active.pop((sender, path), None)
        if task:
            task.cancel()
        self.log({"event": "unregister", "time": time.time(), "path": path})
        say("advert unregistered", path)

    def log(self, record):
        if self.log_path:
            with open(self.log_path, "a") as f:
                f.write(json.dumps(record) + "\n")


async def main():
    bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
    if os.environ.get("FAKE_BLUEZ_NO_ADAPTER") != "1":
        bus.export(ADAPTER_PATH, Adapter(os.environ.get("FAKE_BLUEZ_POWERED", "1") != "0"))
    peer = Peer()
    bus.export(PEER_PATH, peer)
    manager = AdvertisingManager(bus, peer, os.environ.get("FAKE_BLUEZ_LOG"))
    bus.add_message_handler(manager.handle)
    await bus.request_name("org.bluez")
    say("ready")
    print("READY", flush=True)
    await bus.wait_for_disconnect()


asyncio.run(main())

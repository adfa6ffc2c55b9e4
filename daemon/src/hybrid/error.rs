//! Why a hybrid session failed, in words for the person who gave the QR code.

use protocol::hybrid::HybridError as ProtocolError;

#[derive(Debug, thiserror::Error)]
pub enum HybridError {
    /// The QR code itself: unreadable, not FIDO, expired, unsupported request type.
    #[error("{0}")]
    Qr(ProtocolError),
    #[error(
        "cannot reach Bluetooth: {0} (is bluetoothd running, and may fido2d use the system D-Bus?)"
    )]
    BluetoothUnavailable(String),
    #[error("no Bluetooth adapter found: the other computer finds this one over Bluetooth LE")]
    NoAdapter,
    #[error(
        "the Bluetooth adapter {0} is switched off: switch it on (e.g. `bluetoothctl power on`)"
    )]
    AdapterOff(String),
    #[error("the Bluetooth adapter refused to advertise: {0}")]
    AdvertisingFailed(String),
    #[error("cannot reach the tunnel server {url}: {reason}")]
    TunnelUnreachable { url: String, reason: String },
    #[error("the tunnel server {0} did not give a routing ID: is it a caBLE tunnel server?")]
    NoRoutingId(String),
    #[error("the other computer did not connect within {0} s: is its Bluetooth on, and is it close to this one?")]
    InitiatorTimeout(u64),
    #[error("{0}")]
    Handshake(ProtocolError),
    #[error("{0}")]
    Protocol(ProtocolError),
    #[error("the tunnel closed before the other computer finished")]
    TunnelClosed,
    #[error("the tunnel connection failed: {0}")]
    TunnelIo(String),
    #[error("the hybrid session took longer than {0} s and was ended")]
    SessionTimeout(u64),
    #[error("the authenticator has stopped")]
    WorkerStopped,
    #[error("the authenticator could not describe itself (getInfo status 0x{0:02x})")]
    GetInfoFailed(u8),
    #[error("another hybrid session is running: finish it first")]
    Busy,
    #[error("bad hybrid settings: {0}")]
    Config(String),
}

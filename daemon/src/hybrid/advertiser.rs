//! The BLE advert through BlueZ (`org.bluez.LEAdvertisingManager1`, via `bluer`), on the
//! system bus that `DBUS_SYSTEM_BUS_ADDRESS` names (the default one otherwise).
//!
//! The advert is the 20-byte service data under UUID 0xFFF9 plus that UUID in the service
//! list (scanners that filter by UUID drop adverts without it): flags (3) + UUID list (4) +
//! service data (24) = the 31 bytes of a legacy advert, so no name.

use std::collections::{BTreeMap, BTreeSet};

use bluer::adv::{Advertisement, AdvertisementHandle, Type};
use protocol::hybrid::advert::{ADVERT_LEN, SERVICE_UUID16};
use tracing::debug;

use super::HybridError;

/// A powered Bluetooth adapter, ready to advertise.
pub struct Advertiser {
    adapter: bluer::Adapter,
    // The D-Bus connection lives as long as the session.
    _session: bluer::Session,
}

/// The advert is on air while this lives; dropping it unregisters the advert (bluer sends
/// the UnregisterAdvertisement call from a task of its own).
pub struct ActiveAdvert {
    _handle: AdvertisementHandle,
}

impl ActiveAdvert {
    /// Unregisters and gives bluer's task a moment to send the call, for when the process
    /// may exit right after (BlueZ would also drop the advert of a client that went away).
    pub async fn withdraw(self) {
        drop(self);
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// 0000fff9-0000-1000-8000-00805f9b34fb: BlueZ sends it as the 16-bit UUID.
pub fn service_uuid() -> uuid::Uuid {
    uuid::Uuid::from_u128(
        (u128::from(SERVICE_UUID16) << 96) | 0x0000_0000_0000_1000_8000_0080_5f9b_34fb,
    )
}

impl Advertiser {
    /// Finds the default adapter and checks that it is on.
    pub async fn open() -> Result<Self, HybridError> {
        let session = bluer::Session::new()
            .await
            .map_err(|err| HybridError::BluetoothUnavailable(err.to_string()))?;
        let adapter = match session.default_adapter().await {
            Ok(adapter) => adapter,
            Err(err) if err.kind == bluer::ErrorKind::NotFound => {
                return Err(HybridError::NoAdapter)
            }
            Err(err) => return Err(HybridError::BluetoothUnavailable(err.to_string())),
        };
        let powered = adapter
            .is_powered()
            .await
            .map_err(|err| HybridError::BluetoothUnavailable(err.to_string()))?;
        if !powered {
            return Err(HybridError::AdapterOff(adapter.name().to_owned()));
        }
        debug!(adapter = adapter.name(), "Bluetooth adapter ready");
        Ok(Advertiser {
            adapter,
            _session: session,
        })
    }

    pub fn adapter_name(&self) -> &str {
        self.adapter.name()
    }

    /// Starts advertising `payload`.
    pub async fn advertise(&self, payload: &[u8; ADVERT_LEN]) -> Result<ActiveAdvert, HybridError> {
        let advert = Advertisement {
            // Nobody connects to us over BLE: the advert only points at the tunnel.
            advertisement_type: Type::Broadcast,
            service_uuids: BTreeSet::from([service_uuid()]),
            service_data: BTreeMap::from([(service_uuid(), payload.to_vec())]),
            local_name: None,
            ..Default::default()
        };
        let handle = self
            .adapter
            .advertise(advert)
            .await
            .map_err(|err| HybridError::AdvertisingFailed(err.to_string()))?;
        Ok(ActiveAdvert { _handle: handle })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_service_uuid_is_fff9_on_the_bluetooth_base() {
        assert_eq!(
            service_uuid().to_string(),
            "0000fff9-0000-1000-8000-00805f9b34fb"
        );
    }
}

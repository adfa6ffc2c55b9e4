//! The WebSocket to the tunnel server: `<base>/cable/new/<tunnel id>`, subprotocol
//! `fido.cable`; the server names our tunnel in the `X-caBLE-Routing-ID` answer header.
//! TLS is rustls with the system's roots (which honour SSL_CERT_FILE) plus an optional extra
//! CA for a self-hosted server.

use std::path::Path;
use std::sync::Arc;

use protocol::hybrid::advert::ROUTING_ID_LEN;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use tracing::{debug, warn};

use super::HybridError;

pub type TunnelStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

const SUBPROTOCOL: &str = "fido.cable";
const ROUTING_ID_HEADER: &str = "X-caBLE-Routing-ID";

/// TLS settings for the tunnel connection, built once per session.
pub fn tls_config(extra_ca: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, HybridError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for err in &native.errors {
        warn!("some system CA certificates could not be read: {err}");
    }
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    debug!(added, "system CA certificates");
    if let Some(path) = extra_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|err| {
                HybridError::Config(format!("cannot read the CA file {}: {err}", path.display()))
            })?;
        if certs.is_empty() {
            return Err(HybridError::Config(format!(
                "the CA file {} holds no certificate",
                path.display()
            )));
        }
        for cert in certs {
            roots.add(cert).map_err(|err| {
                HybridError::Config(format!("unusable CA in {}: {err}", path.display()))
            })?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| HybridError::Config(err.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Opens the tunnel; returns the stream and our routing ID.
pub async fn open(
    url: &str,
    tls: Arc<rustls::ClientConfig>,
) -> Result<(TunnelStream, [u8; ROUTING_ID_LEN]), HybridError> {
    let unreachable = |reason: String| HybridError::TunnelUnreachable {
        url: url.to_owned(),
        reason,
    };
    let mut request = url
        .into_client_request()
        .map_err(|err| HybridError::Config(format!("bad tunnel URL {url}: {err}")))?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(SUBPROTOCOL),
    );
    // No WebSocket message may be longer than the largest frame a session accepts: the
    // library's default (64 MiB) would be read into memory before anything could refuse it.
    let limit = protocol::hybrid::session::MAX_FRAME_LEN;
    let config = WebSocketConfig::default()
        .max_message_size(Some(limit))
        .max_frame_size(Some(limit));
    let (stream, response) = tokio_tungstenite::connect_async_tls_with_config(
        request,
        Some(config),
        false,
        Some(Connector::Rustls(tls)),
    )
    .await
    .map_err(|err| unreachable(err.to_string()))?;
    let routing_id = response
        .headers()
        .get(ROUTING_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(parse_routing_id)
        .ok_or_else(|| HybridError::NoRoutingId(url.to_owned()))?;
    Ok((stream, routing_id))
}

fn parse_routing_id(text: &str) -> Option<[u8; ROUTING_ID_LEN]> {
    let text = text.trim();
    if text.len() != 2 * ROUTING_ID_LEN || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut id = [0u8; ROUTING_ID_LEN];
    for (i, byte) in id.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_ids() {
        assert_eq!(parse_routing_id("000000"), Some([0, 0, 0]));
        assert_eq!(parse_routing_id("0A1bFf"), Some([0x0a, 0x1b, 0xff]));
        assert_eq!(parse_routing_id(" 026555 "), Some([0x02, 0x65, 0x55]));
        for bad in ["", "00000", "0000000", "00000g", "+10000", "ééé"] {
            assert_eq!(parse_routing_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_missing_ca_file_is_a_config_error() {
        let err = tls_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert!(matches!(err, HybridError::Config(_)), "{err}");
    }
}

//! Who is on the other end of a connection: attached by the listeners to every request.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::model::PresentedCertificate;
use crate::source::SourceKey;

/// Who is on the other end of a connection; attached to every request.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    remote: Remote,
    client_certificate: Option<Arc<PresentedCertificate>>,
    /// What the per-source limits count this peer as (TCP peers only).
    source_key: Option<SourceKey>,
}

#[derive(Debug, Clone)]
enum Remote {
    Tcp(SocketAddr),
    AdminSocket { uid: Option<u32> },
}

impl PeerInfo {
    /// A client over TCP at `addr`, with the certificate it presented (DER), if any, counted
    /// by the per-source limits with IPv6 networks of `ipv6_source_prefix` bits. The
    /// listeners attach this themselves; the constructor lets tests and fuzzers drive the
    /// routers in-process.
    pub fn tcp(
        addr: SocketAddr,
        client_certificate: Option<Vec<u8>>,
        ipv6_source_prefix: u8,
    ) -> Self {
        Self {
            remote: Remote::Tcp(addr),
            client_certificate: client_certificate
                .map(|der| Arc::new(PresentedCertificate::new(&der))),
            source_key: Some(SourceKey::new(addr.ip(), ipv6_source_prefix)),
        }
    }

    /// The operator on the admin socket, as the admin listener attaches it.
    pub fn admin_socket(uid: Option<u32>) -> Self {
        Self {
            remote: Remote::AdminSocket { uid },
            client_certificate: None,
            source_key: None,
        }
    }

    /// This peer with the client certificate it presented in the TLS handshake, read once
    /// and shared by every request of the connection.
    pub fn with_client_certificate(
        mut self,
        certificate: Option<Arc<PresentedCertificate>>,
    ) -> Self {
        self.client_certificate = certificate;
        self
    }

    /// The source recorded in history: the peer's IP address, or `admin-socket`.
    pub fn source(&self) -> String {
        match &self.remote {
            Remote::Tcp(addr) => addr.ip().to_string(),
            Remote::AdminSocket { .. } => "admin-socket".to_owned(),
        }
    }

    /// What the per-source limits count this peer as; `None` on the admin socket.
    pub fn source_key(&self) -> Option<SourceKey> {
        self.source_key
    }

    /// The client certificate the peer presented in the TLS handshake.
    pub fn client_certificate(&self) -> Option<&PresentedCertificate> {
        self.client_certificate.as_deref()
    }

    /// `Some(uid)` when the request came over the admin socket (the operator).
    pub fn admin_socket_uid(&self) -> Option<Option<u32>> {
        match self.remote {
            Remote::AdminSocket { uid } => Some(uid),
            Remote::Tcp(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_peers_and_the_operator_are_told_apart() {
        let addr: SocketAddr = "[2001:db8::1]:40000".parse().unwrap();
        let peer = PeerInfo::tcp(addr, Some(b"der".to_vec()), 64);
        assert_eq!(peer.source(), "2001:db8::1");
        assert_eq!(peer.admin_socket_uid(), None);
        assert_eq!(
            peer.client_certificate().map(PresentedCertificate::der),
            Some(&b"der"[..])
        );
        assert_eq!(
            peer.source_key(),
            Some(SourceKey::new("2001:db8::ffff".parse().unwrap(), 64))
        );
        let operator = PeerInfo::admin_socket(Some(0));
        assert_eq!(operator.source(), "admin-socket");
        assert_eq!(operator.admin_socket_uid(), Some(Some(0)));
        assert_eq!(operator.source_key(), None);
        assert_eq!(operator.client_certificate(), None);
    }
}

//! The server's side of one full TLS 1.3 handshake with a client certificate, in memory (no
//! sockets): what every renewal costs the daemon before its request is read. A renewal
//! presents the certificate it replaces, so it never resumes an earlier session.
//!
//! Everything is ECDSA P-256, as in estca: the issuing CA's key, its TLS server key and the
//! keys clients enroll; rustls with ring and its default key exchange (X25519), as the daemon
//! and `estca-bench` use. The client's certificate is checked by rustls's WebPKI verifier
//! (estca's wraps it and adds a parse), so this is a floor.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};

/// A server configuration that requires a client certificate, and a client configuration
/// that presents one and never resumes.
pub struct Endpoints {
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

/// A fresh P-256 key pair.
fn p256() -> rcgen::KeyPair {
    rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key")
}

/// The certificate `params` describe for `key`, signed by `issuer`, and the key as rustls
/// takes it.
fn certified(
    params: rcgen::CertificateParams,
    key: &rcgen::KeyPair,
    issuer: &rcgen::Issuer<'_, rcgen::KeyPair>,
) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let cert = params.signed_by(key, issuer).expect("certificate");
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (cert.der().clone(), key)
}

impl Endpoints {
    /// A CA, a server certificate for `localhost` and a client certificate, all P-256.
    pub fn new() -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Bench TLS CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, p256()).expect("CA");
        let mut roots = RootCertStore::empty();
        roots.add(ca.der().clone()).expect("root");

        let server_params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
        let (server_cert, server_key) = certified(server_params, &p256(), &ca);
        let mut client_params =
            rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        client_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "nozawa1");
        client_params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let (client_cert, client_key) = certified(client_params, &p256(), &ca);

        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots.clone()), provider.clone())
                .build()
                .expect("client verifier");
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server_cert, ca.der().clone()], server_key)
            .expect("server configuration");
        // A floor: no session tickets (the daemon sends stateless ones after a handshake).
        server.send_tls13_tickets = 0;
        let mut client = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("TLS 1.3")
            .with_root_certificates(roots)
            .with_client_auth_cert(vec![client_cert, ca.der().clone()], client_key)
            .expect("client configuration");
        client.resumption = Resumption::disabled();
        Self {
            server: Arc::new(server),
            client: Arc::new(client),
        }
    }

    /// Runs one full handshake between a new client and a new server connection, moving
    /// their records through memory, and returns the time spent in the server's calls only.
    pub fn server_handshake_time(&self) -> Duration {
        let name = ServerName::try_from("localhost").expect("name");
        let mut client = ClientConnection::new(self.client.clone(), name).expect("client");
        let mut server = ServerConnection::new(self.server.clone()).expect("server");
        let mut in_server = Duration::ZERO;
        let mut wire = Vec::new();
        while client.is_handshaking() || server.is_handshaking() {
            wire.clear();
            while client.wants_write() {
                client.write_tls(&mut wire).expect("client writes");
            }
            let start = Instant::now();
            let mut records = wire.as_slice();
            while !records.is_empty() {
                server.read_tls(&mut records).expect("server reads");
                server.process_new_packets().expect("server handshake");
            }
            let mut reply = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut reply).expect("server writes");
            }
            in_server += start.elapsed();
            // Neither side has anything to send yet both still handshake: the loop would spin.
            assert!(
                !(wire.is_empty() && reply.is_empty()),
                "the in-memory handshake stalled"
            );
            let mut records = reply.as_slice();
            while !records.is_empty() {
                client.read_tls(&mut records).expect("client reads");
                client.process_new_packets().expect("client handshake");
            }
        }
        in_server
    }
}

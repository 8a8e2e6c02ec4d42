//! A client certificate presented in a TLS handshake, read once per connection.

use std::sync::Arc;

use super::Serial;

/// The certificate a TLS client presented (DER), with the estca serial it names, if any.
///
/// The listener builds one per connection: every request on a keep-alive connection then
/// finds the serial without parsing the certificate again. The serial only says which record
/// to look up; the registration authority still requires the stored certificate to equal
/// these bytes before it trusts anything about the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresentedCertificate {
    der: Arc<[u8]>,
    serial: Option<Serial>,
}

impl PresentedCertificate {
    /// Reads the serial of `der`; `serial()` is `None` when `der` is not a certificate or its
    /// serial is not one estca issues (16 bytes, first byte 01 to 7f).
    pub fn new(der: &[u8]) -> Self {
        let serial = x509_parser::parse_x509_certificate(der)
            .ok()
            .and_then(|(_, cert)| <[u8; 16]>::try_from(cert.tbs_certificate.raw_serial()).ok())
            .and_then(|bytes| Serial::from_bytes(bytes).ok());
        Self {
            der: Arc::from(der),
            serial,
        }
    }

    /// The certificate as presented, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The serial the certificate names, when it can be one of estca's.
    pub fn serial(&self) -> Option<Serial> {
        self.serial
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_that_are_not_a_certificate_name_no_serial() {
        let presented = PresentedCertificate::new(b"not a certificate");
        assert_eq!(presented.serial(), None);
        assert_eq!(presented.der(), b"not a certificate");
    }

    #[test]
    fn a_certificate_with_a_serial_estca_does_not_issue_names_none() {
        // rcgen's default serial is not 16 bytes beginning 01..7f.
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(vec!["x.test".into()]).expect("params");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x80; 16]));
        let cert = params.self_signed(&key).expect("certificate");
        assert_eq!(PresentedCertificate::new(cert.der()).serial(), None);

        let mut bytes = [0x11; 16];
        bytes[0] = 0x7f;
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&bytes));
        let cert = params.self_signed(&key).expect("certificate");
        assert_eq!(
            PresentedCertificate::new(cert.der()).serial(),
            Some(Serial::from_bytes(bytes).expect("serial"))
        );
    }
}

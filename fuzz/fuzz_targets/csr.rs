//! CSR parsing and validation: the body decoder (base64, wrapped or not, or PEM) and the
//! PKCS#10 checks (DER, signature, key type) must answer every input with a value or an
//! error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The bytes as a request body...
    if let Ok(der) = estca::ca::csr::decode_text(data) {
        let _ = estca::ca::validate_csr(&der);
    }
    // ...and as the DER itself.
    if let Ok(key) = estca::ca::validate_csr(data) {
        // A key that validated has a well-formed SPKI and a kind the CA accepts.
        assert!(!key.spki_der().is_empty());
        let _ = key.fingerprint();
    }
});

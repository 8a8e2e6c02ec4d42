//! Key pairs and CSRs made before the timed window, and the certificates in EST answers.

use anyhow::{anyhow, Context, Result};
use base64::Engine;
use der::{Decode, Encode};
use hyper::body::Bytes;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A fresh ECDSA P-256 key and a CSR for it.
#[derive(Clone)]
pub struct KeyAndCsr {
    /// PKCS#8 DER of the private key.
    pub key_der: Vec<u8>,
    /// The CSR, DER, base64 (the EST request body).
    pub csr_base64: Bytes,
}

/// One key and CSR.
pub fn one() -> Result<KeyAndCsr> {
    named("estca-bench")
}

/// One key and a CSR whose subject is `CN=<cn>`: how an application names the ID it enrolls.
pub fn named(cn: &str) -> Result<KeyAndCsr> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| anyhow!("generating a P-256 key: {e}"))?;
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, cn);
    let csr = params
        .serialize_request(&key)
        .map_err(|e| anyhow!("making a CSR: {e}"))?;
    Ok(KeyAndCsr {
        key_der: key.serialize_der(),
        csr_base64: Bytes::from(B64.encode(csr.der())),
    })
}

/// `n` keys and CSRs, made on all cores.
pub fn pool(n: usize) -> Result<Vec<KeyAndCsr>> {
    pool_of(n, |_| one())
}

/// A key and a CSR naming each of `ids` (`CN=<id>`), in order, made on all cores.
pub fn for_ids(ids: &[String]) -> Result<Vec<KeyAndCsr>> {
    pool_of(ids.len(), |i| named(&ids[i]))
}

/// `n` results of `make(i)`, made on all cores, in order of `i`.
fn pool_of(n: usize, make: impl Fn(usize) -> Result<KeyAndCsr> + Sync) -> Result<Vec<KeyAndCsr>> {
    let threads = std::thread::available_parallelism()
        .map(|p| p.get())
        .unwrap_or(2);
    let per = n.div_ceil(threads.max(1));
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let count = per.min(n.saturating_sub(t * per));
                let make = &make;
                s.spawn(move || {
                    (t * per..t * per + count)
                        .map(make)
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(n);
        for h in handles {
            let part = h
                .join()
                .map_err(|_| anyhow!("a key generation thread panicked"))??;
            out.extend(part);
        }
        Ok(out)
    })
}

/// The certificate in a base64 certs-only PKCS#7 answer, DER.
pub fn certificate_of(body: &[u8]) -> Result<Vec<u8>> {
    let text = std::str::from_utf8(body).context("the answer is not text")?;
    // RFC 2045 lines (estca's default) or one line (est.single_line_base64).
    let text: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = B64.decode(text).context("the answer is not base64")?;
    let info = cms::content_info::ContentInfo::from_der(&der).context("not a ContentInfo")?;
    let signed: cms::signed_data::SignedData =
        info.content.decode_as().context("not a SignedData")?;
    let set = signed
        .certificates
        .ok_or_else(|| anyhow!("the PKCS#7 answer holds no certificate"))?;
    for choice in set.0.iter() {
        if let cms::cert::CertificateChoices::Certificate(c) = choice {
            return Ok(c.to_der()?);
        }
    }
    Err(anyhow!("the PKCS#7 answer holds no certificate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_has_distinct_valid_csrs() {
        let pool = pool(5).unwrap();
        assert_eq!(pool.len(), 5);
        for k in &pool {
            let der = B64.decode(&k.csr_base64).unwrap();
            estca::ca::validate_csr(&der).unwrap();
        }
        assert_ne!(pool[0].key_der, pool[1].key_der);
    }
}

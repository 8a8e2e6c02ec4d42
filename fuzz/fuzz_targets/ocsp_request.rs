//! The OCSP responder, which answers anyone on the plain-HTTP revocation listener: every
//! request gets `successful` or `malformedRequest`, never a panic, and never `internalError`
//! (which only a failing store or signer may cause). The responder is the real one of the
//! development CA, over a temporary sled store. Input: one byte choosing the form, then
//! - even: the rest as the DER of an OCSPRequest, whatever it holds;
//! - odd: CertIDs of the fixture's issuing CA built from the rest, each a byte choosing the
//!   hash algorithm, a length byte and that many bytes of serial number, and with bit 1 of
//!   the first byte a nonce of the last bytes: so that what lies past the issuer's hashes
//!   (serial numbers, the store's lookup, the cache, the signature, nonces) is reached.
#![no_main]

#[path = "common.rs"]
mod common;

use std::sync::{Arc, OnceLock};

use der::asn1::OctetString;
use der::Encode;
use estca::ca::ocsp::CertIdHash;
use estca::internal::revocation::{IssuerIndex, OcspResponder};
use estca::ra::SystemClock;
use libfuzzer_sys::fuzz_target;
use x509_ocsp::OcspResponseStatus;

fn responder() -> &'static OcspResponder {
    static RESPONDER: OnceLock<OcspResponder> = OnceLock::new();
    RESPONDER.get_or_init(|| {
        let fixture = common::fixture();
        let issuers = Arc::new(IssuerIndex::new(fixture.cas.clone(), fixture.store.clone()));
        fixture
            .runtime
            .block_on(OcspResponder::new(
                fixture.store.clone(),
                fixture.store.clone(),
                fixture.cas.current(),
                issuers,
                Arc::new(SystemClock),
                time::Duration::hours(1),
                time::Duration::days(7),
            ))
            .expect("OCSP responder")
    })
}

/// An OCSPRequest for the fixture's CA built from `data` (see the module's documentation), or
/// `None` where `data` does not make one.
fn built_request(with_nonce: bool, data: &[u8]) -> Option<Vec<u8>> {
    let hashes = common::fixture().cas.current().ocsp_issuer_hashes().ok()?;
    let (nonce, mut rest) = if with_nonce {
        let (&length, rest) = data.split_first()?;
        let length = usize::from(length).min(rest.len());
        let (nonce, rest) = rest.split_at(rest.len() - length);
        (Some(nonce), rest)
    } else {
        (None, data)
    };
    let mut request_list = Vec::new();
    while let [hash, length, tail @ ..] = rest {
        let length = usize::from(*length).min(tail.len());
        let (serial, tail) = tail.split_at(length);
        rest = tail;
        let hash = CertIdHash::ALL[usize::from(*hash) % CertIdHash::ALL.len()];
        let Ok(serial) = x509_cert::serial_number::SerialNumber::new(serial) else {
            continue;
        };
        request_list.push(x509_ocsp::Request {
            req_cert: hashes.cert_id(hash, serial).ok()?,
            single_request_extensions: None,
        });
    }
    let request_extensions = match nonce {
        Some(nonce) => Some(vec![x509_cert::ext::Extension {
            extn_id: const_oid::db::rfc6960::ID_PKIX_OCSP_NONCE,
            critical: false,
            extn_value: OctetString::new(OctetString::new(nonce).ok()?.to_der().ok()?).ok()?,
        }]),
        None => None,
    };
    x509_ocsp::OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            request_list,
            request_extensions,
            ..Default::default()
        },
        optional_signature: None,
    }
    .to_der()
    .ok()
}

fuzz_target!(|data: &[u8]| {
    let Some((&form, rest)) = data.split_first() else {
        return;
    };
    let request = if form & 1 == 0 {
        rest.to_vec()
    } else {
        match built_request(form & 2 != 0, rest) {
            Some(request) => request,
            None => return,
        }
    };
    let answer = common::fixture()
        .runtime
        .block_on(responder().respond(&request));
    assert!(
        matches!(
            answer.status,
            OcspResponseStatus::Successful | OcspResponseStatus::MalformedRequest
        ),
        "unexpected status {:?}",
        answer.status
    );
    assert!(!answer.der.is_empty(), "an answer with no bytes");
});

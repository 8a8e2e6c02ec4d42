//! The certificate profiles: what estca writes into an end-entity (client) certificate and
//! into the daemon's own TLS server certificate.
//!
//! Building the to-be-signed certificate and signing it are separate steps
//! ([`end_entity_tbs`] then [`sign_tbs`]) so that a pre-issuance check can sit between them.

use std::net::IpAddr;

use const_oid::db::{rfc4519, rfc5280};
use const_oid::AssociatedOid;
use der::asn1::{
    AnyRef, BitString, Ia5String, OctetString, PrintableStringRef, SetOfVec, Utf8StringRef,
};
use der::asn1::{GeneralizedTime, UtcTime};
use der::{Any, Decode, Encode};
use time::{Date, Month, OffsetDateTime, UtcOffset};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};
use x509_cert::{Certificate, TbsCertificate, Version};

use super::csr::KeyKind;
use super::key::CaKey;
use super::{CaError, EndEntityRequest};
use crate::model::{Holder, HostName, PublicUrl};

/// What the profile needs to know about the issuing CA and the configured names.
pub(crate) struct IssuerContext<'a> {
    /// The issuing CA certificate's subject (becomes the issuer, byte for byte).
    pub name: &'a Name,
    /// The issuing CA's subject key identifier (becomes the authority key identifier).
    pub key_id: &'a [u8],
    /// The issuing CA's notAfter: nothing is issued beyond it.
    pub not_after: OffsetDateTime,
    /// C of issued certificates.
    pub country: &'a str,
    /// O of issued certificates.
    pub organization: &'a str,
    /// First OU of issued certificates (the issuing CA's name).
    pub issuing_name: &'a str,
    /// CN template with `{id}` and maybe `{contract}`.
    pub common_name_template: &'a str,
    /// Where relying parties check revocation; `None` leaves the extensions out.
    pub revocation_urls: Option<&'a RevocationUrls>,
}

/// The revocation URLs written into end-entity certificates: the CRL distribution point and
/// the authority information access (OCSP responder, issuing CA certificate). The CRL and
/// the CA certificate are those of the certificate's own issuer, named by its generation ID
/// (see `crate::ca::generations`), so that they stay right after a rollover; the OCSP
/// responder is one URL for every issuer (it tells them apart by the request's CertID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationUrls {
    /// `<public_url>/crl/<generation>`.
    pub crl: Ia5String,
    /// `<public_url>/ocsp`.
    pub ocsp: Ia5String,
    /// `<public_url>/ca/<generation>.crt`.
    pub ca_issuers: Ia5String,
}

impl RevocationUrls {
    /// The URLs under `public_url` of the issuing CA whose generation ID is `generation`.
    pub fn under(public_url: &PublicUrl, generation: &str) -> Result<Self, CaError> {
        let uri = |path: &str| {
            Ia5String::new(&public_url.join(path)).map_err(|e| {
                CaError::InvalidName(format!(
                    "revocation.public_url '{public_url}' cannot be put into a certificate: {e}"
                ))
            })
        };
        Ok(Self {
            crl: uri(&format!("/crl/{generation}"))?,
            ocsp: uri("/ocsp")?,
            ca_issuers: uri(&format!("/ca/{generation}.crt"))?,
        })
    }
}

/// Longest common name X.520 allows (ub-common-name).
const MAX_COMMON_NAME: usize = 64;

/// `t` in UTC, `years` calendar years later; 29 February becomes 28 February when the
/// target year is not a leap year.
pub(crate) fn add_years(t: OffsetDateTime, years: u32) -> Result<OffsetDateTime, CaError> {
    let t = t.to_offset(UtcOffset::UTC);
    let out_of_range = || CaError::Internal(format!("{t} plus {years} years is out of range"));
    let year = i32::try_from(years)
        .ok()
        .and_then(|y| t.year().checked_add(y))
        .ok_or_else(out_of_range)?;
    let day = if t.month() == Month::February && t.day() == 29 && !time::util::is_leap_year(year) {
        28
    } else {
        t.day()
    };
    let date = Date::from_calendar_date(year, t.month(), day).map_err(|_| out_of_range())?;
    Ok(t.replace_date(date))
}

/// RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050; whole seconds.
pub(crate) fn to_x509_time(t: OffsetDateTime) -> Result<Time, CaError> {
    let secs = u64::try_from(t.unix_timestamp())
        .map_err(|_| CaError::Internal(format!("{t} is before 1970")))?;
    let dt = der::DateTime::from_unix_duration(std::time::Duration::from_secs(secs))
        .map_err(|e| CaError::Internal(format!("{t} cannot be encoded: {e}")))?;
    if dt.year() < 2050 {
        UtcTime::from_date_time(dt).map(Time::UtcTime)
    } else {
        Ok(Time::GeneralTime(GeneralizedTime::from_date_time(dt)))
    }
    .map_err(|e| CaError::Internal(format!("{t} cannot be encoded: {e}")))
}

/// Converts an X.509 time to `OffsetDateTime`.
pub(crate) fn from_x509_time(t: &Time) -> Result<OffsetDateTime, CaError> {
    let secs = i64::try_from(t.to_unix_duration().as_secs())
        .map_err(|_| CaError::Internal("a certificate time is out of range".into()))?;
    OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| CaError::Internal("a certificate time is out of range".into()))
}

/// RFC 5280 4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT STRING's bits.
pub(crate) fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        spki.subject_public_key.raw_bytes(),
    );
    digest.as_ref().to_vec()
}

/// One RDN holding one attribute.
fn rdn(oid: const_oid::ObjectIdentifier, value: Any) -> Result<RelativeDistinguishedName, CaError> {
    let set = SetOfVec::try_from(vec![AttributeTypeAndValue { oid, value }])
        .map_err(|e| CaError::Internal(format!("building a name: {e}")))?;
    Ok(RelativeDistinguishedName(set))
}

/// A UTF8String attribute value; `what` names the value in errors.
fn utf8(value: &str, what: &str) -> Result<Any, CaError> {
    Utf8StringRef::new(value)
        .and_then(|s| Any::encode_from(&s))
        .map_err(|e| CaError::InvalidName(format!("{what} '{value}' cannot be encoded: {e}")))
}

/// The common name from the template.
fn common_name(template: &str, id: &str, contract: &str) -> Result<String, CaError> {
    let cn = template.replace("{id}", id).replace("{contract}", contract);
    if cn.chars().count() > MAX_COMMON_NAME {
        return Err(CaError::InvalidName(format!(
            "the common name '{cn}' is longer than {MAX_COMMON_NAME} characters: shorten \
             certificate.common_name_template"
        )));
    }
    Ok(cn)
}

/// The end-entity subject, one attribute per RDN, and its display form. For an ID: C, O,
/// OU (issuing CA), OU USERTYPE, OU CERTISSUEDNUM, CN from the template. For an application:
/// C, O, OU (issuing CA), OU APP, CN = its name, so it never carries a person's USERTYPE.
pub(crate) fn end_entity_subject(
    ctx: &IssuerContext<'_>,
    holder: &Holder,
) -> Result<(Name, String), CaError> {
    let (units, cn) = match holder {
        Holder::Account {
            id,
            contract,
            role,
            issued_num,
        } => (
            vec![
                format!("USERTYPE - {}", role.usertype()),
                format!("CERTISSUEDNUM - {issued_num}"),
            ],
            common_name(ctx.common_name_template, id.as_str(), contract.as_str())?,
        ),
        Holder::App { name } => (vec!["APP".to_owned()], name.to_string()),
        Holder::TlsServer { .. } | Holder::OcspSigner => {
            return Err(CaError::Internal(
                "an end-entity certificate cannot be issued to one of estca's services".into(),
            ))
        }
    };
    let country = PrintableStringRef::new(ctx.country)
        .and_then(|s| Any::encode_from(&s))
        .map_err(|_| {
            CaError::InvalidName(format!(
                "country '{}' is not a two-letter code: fix ca.country",
                ctx.country
            ))
        })?;
    let mut rdns = vec![
        rdn(rfc4519::C, country)?,
        rdn(rfc4519::O, utf8(ctx.organization, "organization")?)?,
        rdn(rfc4519::OU, utf8(ctx.issuing_name, "issuing CA name")?)?,
    ];
    for unit in &units {
        rdns.push(rdn(rfc4519::OU, utf8(unit, "organizational unit")?)?);
    }
    rdns.push(rdn(rfc4519::CN, utf8(&cn, "common name")?)?);
    let mut display = format!(
        "C={}, O={}, OU={}",
        ctx.country, ctx.organization, ctx.issuing_name
    );
    for unit in &units {
        display.push_str(&format!(", OU={unit}"));
    }
    display.push_str(&format!(", CN={cn}"));
    Ok((RdnSequence(rdns), display))
}

/// C, O and OU = the issuing CA's name: the start of the subjects of certificates the CA
/// issues to its own services (the OCSP responder).
pub(crate) fn subject_prefix(
    ctx: &IssuerContext<'_>,
) -> Result<Vec<RelativeDistinguishedName>, CaError> {
    let country = PrintableStringRef::new(ctx.country)
        .and_then(|s| Any::encode_from(&s))
        .map_err(|_| {
            CaError::InvalidName(format!(
                "country '{}' is not a two-letter code: fix ca.country",
                ctx.country
            ))
        })?;
    Ok(vec![
        rdn(rfc4519::C, country)?,
        rdn(rfc4519::O, utf8(ctx.organization, "organization")?)?,
        rdn(rfc4519::OU, utf8(ctx.issuing_name, "issuing CA name")?)?,
    ])
}

/// A CA's subject: C (PrintableString), O and CN (UTF8String), as `estca init` names its
/// CAs.
pub(crate) fn ca_subject(country: &str, organization: &str, cn: &str) -> Result<Name, CaError> {
    let country_value = PrintableStringRef::new(country)
        .and_then(|s| Any::encode_from(&s))
        .map_err(|_| {
            CaError::InvalidName(format!(
                "country '{country}' is not a two-letter code: fix ca.country"
            ))
        })?;
    Ok(RdnSequence(vec![
        rdn(rfc4519::C, country_value)?,
        rdn(rfc4519::O, utf8(organization, "organization")?)?,
        common_name_rdn(cn)?,
    ]))
}

/// An RDN holding one common name.
pub(crate) fn common_name_rdn(cn: &str) -> Result<RelativeDistinguishedName, CaError> {
    rdn(rfc4519::CN, utf8(cn, "common name")?)
}

/// Wraps an extension value with its OID and criticality.
pub(crate) fn extension<T: Encode + AssociatedOid>(
    value: &T,
    critical: bool,
) -> Result<Extension, CaError> {
    let der = value
        .to_der()
        .map_err(|e| CaError::Internal(format!("encoding extension {}: {e}", T::OID)))?;
    Ok(Extension {
        extn_id: T::OID,
        critical,
        extn_value: OctetString::new(der)
            .map_err(|e| CaError::Internal(format!("encoding extension {}: {e}", T::OID)))?,
    })
}

/// The CRL distribution point and AIA extensions for `urls` (RFC 5280 4.2.1.13, 4.2.2.1).
fn revocation_extensions(urls: &RevocationUrls) -> Result<Vec<Extension>, CaError> {
    let uri = |u: &Ia5String| GeneralName::UniformResourceIdentifier(u.clone());
    Ok(vec![
        extension(
            &CrlDistributionPoints(vec![DistributionPoint {
                distribution_point: Some(DistributionPointName::FullName(vec![uri(&urls.crl)])),
                reasons: None,
                crl_issuer: None,
            }]),
            false,
        )?,
        extension(
            &AuthorityInfoAccessSyntax(vec![
                AccessDescription {
                    access_method: rfc5280::ID_AD_OCSP,
                    access_location: uri(&urls.ocsp),
                },
                AccessDescription {
                    access_method: rfc5280::ID_AD_CA_ISSUERS,
                    access_location: uri(&urls.ca_issuers),
                },
            ]),
            false,
        )?,
    ])
}

pub(crate) fn octets(bytes: &[u8]) -> Result<OctetString, CaError> {
    OctetString::new(bytes).map_err(|e| CaError::Internal(format!("encoding a key id: {e}")))
}

/// The extensions every estca leaf carries besides its usage: basicConstraints CA:FALSE
/// (critical), keyUsage (critical), extendedKeyUsage (not critical), SKI, AKI.
pub(crate) fn leaf_extensions(
    ctx: &IssuerContext<'_>,
    spki: &SubjectPublicKeyInfoOwned,
    key_usage: KeyUsage,
    ekus: &[const_oid::ObjectIdentifier],
) -> Result<Vec<Extension>, CaError> {
    Ok(vec![
        extension(
            &BasicConstraints {
                ca: false,
                path_len_constraint: None,
            },
            true,
        )?,
        extension(&key_usage, true)?,
        extension(&ExtendedKeyUsage(ekus.to_vec()), false)?,
        extension(&SubjectKeyIdentifier(octets(&key_identifier(spki))?), false)?,
        extension(
            &AuthorityKeyIdentifier {
                key_identifier: Some(octets(ctx.key_id)?),
                authority_cert_issuer: None,
                authority_cert_serial_number: None,
            },
            false,
        )?,
    ])
}

/// id-kp-cmcRA (RFC 6402 section 2.10): the certificate holder is a registration authority.
/// EST clients look for it to tell an RA forwarding requests from the requester itself
/// (RFC 7030 section 3.7).
pub const ID_KP_CMC_RA: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.28");

/// The extended key usages of an end-entity certificate: clientAuth, and for an application
/// credential (which enrolls IDs as an EST registration authority) also id-kp-cmcRA, led by
/// serverAuth when it also serves TLS for named hosts (`serves_hosts`).
pub(crate) fn end_entity_ekus(
    holder: &Holder,
    serves_hosts: bool,
) -> &'static [const_oid::ObjectIdentifier] {
    match holder {
        Holder::App { .. } if serves_hosts => &[
            rfc5280::ID_KP_SERVER_AUTH,
            rfc5280::ID_KP_CLIENT_AUTH,
            ID_KP_CMC_RA,
        ],
        Holder::App { .. } => &[rfc5280::ID_KP_CLIENT_AUTH, ID_KP_CMC_RA],
        _ => &[rfc5280::ID_KP_CLIENT_AUTH],
    }
}

/// The subjectAltName entry of `host`: an iPAddress for an address literal, else a dNSName.
pub(crate) fn host_general_name(host: &HostName) -> Result<GeneralName, CaError> {
    match host.ip() {
        Some(IpAddr::V4(ip)) => Ok(GeneralName::IpAddress(octets(&ip.octets())?)),
        Some(IpAddr::V6(ip)) => Ok(GeneralName::IpAddress(octets(&ip.octets())?)),
        None => Ia5String::new(host.as_str())
            .map(GeneralName::DnsName)
            .map_err(|_| CaError::InvalidName(format!("'{host}' is not an ASCII DNS name"))),
    }
}

/// The hosts the certificate `der` names in its subjectAltName, read back the way
/// `host_general_name` wrote them (entries of other kinds are skipped): an application's
/// certificate is the record of the hosts it was granted. Empty for a certificate that
/// cannot be read or names none.
pub fn certificate_hosts(der: &[u8]) -> Vec<HostName> {
    let Ok(cert) = Certificate::from_der(der) else {
        return Vec::new();
    };
    let san = cert
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == SubjectAltName::OID)
        .and_then(|e| SubjectAltName::from_der(e.extn_value.as_bytes()).ok());
    san.map(|san| {
        san.0
            .iter()
            .filter_map(|name| match name {
                GeneralName::DnsName(dns) => dns.as_str().parse().ok(),
                GeneralName::IpAddress(octets) => {
                    let bytes = octets.as_bytes();
                    <[u8; 4]>::try_from(bytes)
                        .map(IpAddr::from)
                        .or_else(|_| <[u8; 16]>::try_from(bytes).map(IpAddr::from))
                        .ok()
                        .map(HostName::from)
                }
                _ => None,
            })
            .collect()
    })
    .unwrap_or_default()
}

/// The to-be-signed end-entity certificate, with its subject's display form and validity.
pub(crate) fn end_entity_tbs(
    ctx: &IssuerContext<'_>,
    key: &CaKey,
    request: &EndEntityRequest<'_>,
) -> Result<(TbsCertificate, String, OffsetDateTime, OffsetDateTime), CaError> {
    let not_before = request
        .not_before
        .to_offset(UtcOffset::UTC)
        .replace_nanosecond(0)
        .map_err(|e| CaError::Internal(format!("truncating notBefore: {e}")))?;
    let not_after = add_years(not_before, 1)?;
    if not_after > ctx.not_after {
        return Err(CaError::CaExpiresTooSoon {
            certificate_not_after: not_after,
            ca_not_after: ctx.not_after,
        });
    }
    let (subject, display) = end_entity_subject(ctx, request.holder)?;
    let spki = SubjectPublicKeyInfoOwned::from_der(request.key.spki_der())
        .map_err(|e| CaError::Internal(format!("re-reading a validated public key: {e}")))?;
    let mut usages = KeyUsage(KeyUsages::DigitalSignature.into());
    if matches!(request.key.kind(), KeyKind::Rsa { .. }) {
        usages = KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment);
    }
    let serves_hosts = !request.hosts.is_empty();
    if serves_hosts && !matches!(request.holder, Holder::App { .. }) {
        return Err(CaError::Internal(
            "only an application's certificate names hosts".into(),
        ));
    }
    let mut extensions = leaf_extensions(
        ctx,
        &spki,
        usages,
        end_entity_ekus(request.holder, serves_hosts),
    )?;
    if serves_hosts {
        let names = request
            .hosts
            .iter()
            .map(host_general_name)
            .collect::<Result<Vec<_>, _>>()?;
        extensions.push(extension(&SubjectAltName(names), false)?);
    }
    if let Some(urls) = ctx.revocation_urls {
        extensions.extend(revocation_extensions(urls)?);
    }
    let tbs = tbs_certificate(
        request.serial.serial().as_bytes(),
        ctx.name,
        key,
        subject,
        spki,
        not_before,
        not_after,
        extensions,
    )?;
    Ok((tbs, display, not_before, not_after))
}

/// The commonName of the TLS server certificate for `hostnames`: the first host name, unless
/// it is longer than ub-common-name (64 characters, RFC 5280 appendix A), which a host name
/// may be (up to 253). Then there is none: the subject is left empty rather than truncated or
/// filled with another name, since the subjectAltName carries every host name and is what
/// TLS clients match (RFC 6125).
pub(crate) fn tls_server_common_name(hostnames: &[String]) -> Option<&str> {
    hostnames
        .first()
        .map(String::as_str)
        .filter(|first| first.chars().count() <= MAX_COMMON_NAME)
}

/// The to-be-signed TLS server certificate for `hostnames`: CN = the first when it fits
/// ([`tls_server_common_name`]), otherwise an empty subject with a critical subjectAltName
/// (RFC 5280 4.2.1.6 asks for that criticality when the subject is empty).
#[allow(clippy::too_many_arguments)]
pub(crate) fn tls_server_tbs(
    ctx: &IssuerContext<'_>,
    key: &CaKey,
    serial: &[u8],
    hostnames: &[String],
    spki: SubjectPublicKeyInfoOwned,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Result<TbsCertificate, CaError> {
    if hostnames.is_empty() {
        return Err(CaError::InvalidName(
            "give at least one host name for the server certificate".into(),
        ));
    }
    let mut names = Vec::with_capacity(hostnames.len());
    for host in hostnames {
        let host: HostName = host
            .parse()
            .map_err(|e| CaError::InvalidName(format!("{e}: fix server.hostnames")))?;
        names.push(host_general_name(&host)?);
    }
    let subject = match tls_server_common_name(hostnames) {
        Some(cn) => RdnSequence(vec![rdn(rfc4519::CN, utf8(cn, "host name")?)?]),
        None => RdnSequence(Vec::new()),
    };
    let san_critical = subject.0.is_empty();
    let mut extensions = leaf_extensions(
        ctx,
        &spki,
        KeyUsage(KeyUsages::DigitalSignature.into()),
        &[rfc5280::ID_KP_SERVER_AUTH],
    )?;
    extensions.push(extension(&SubjectAltName(names), san_critical)?);
    tbs_certificate(
        serial, ctx.name, key, subject, spki, not_before, not_after, extensions,
    )
}

/// The TBSCertificate every certificate estca signs has: v3, `serial`, the signature
/// algorithm of `key`, `issuer`'s name, the validity, and `extensions`. The issuing CA, the
/// OCSP signer and the offline root all build theirs here.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tbs_certificate(
    serial: &[u8],
    issuer: &Name,
    key: &CaKey,
    subject: Name,
    spki: SubjectPublicKeyInfoOwned,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    extensions: Vec<Extension>,
) -> Result<TbsCertificate, CaError> {
    Ok(TbsCertificate {
        version: Version::V3,
        serial_number: SerialNumber::new(serial)
            .map_err(|e| CaError::Internal(format!("encoding the serial: {e}")))?,
        signature: key.signature_algorithm(),
        issuer: issuer.clone(),
        validity: Validity {
            not_before: to_x509_time(not_before)?,
            not_after: to_x509_time(not_after)?,
        },
        subject,
        subject_public_key_info: spki,
        issuer_unique_id: None,
        subject_unique_id: None,
        extensions: Some(extensions),
    })
}

/// `Certificate` (RFC 5280 4.1) around a to-be-signed certificate that is already encoded:
/// the bytes the CA key signed are the bytes the certificate carries, encoded once.
#[derive(der::Sequence)]
struct SignedCertificate<'a> {
    tbs_certificate: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// DER-encodes `tbs`, signs it with the CA key and returns the certificate's DER.
pub(crate) fn sign_tbs(key: &CaKey, tbs: TbsCertificate) -> Result<Vec<u8>, CaError> {
    let encoding = |e: der::Error| CaError::Internal(format!("encoding a certificate: {e}"));
    let tbs_der = tbs.to_der().map_err(encoding)?;
    let signature: BitString = key.sign(&tbs_der)?;
    SignedCertificate {
        tbs_certificate: AnyRef::from_der(&tbs_der).map_err(encoding)?,
        signature_algorithm: tbs.signature,
        signature,
    }
    .to_der()
    .map_err(encoding)
}

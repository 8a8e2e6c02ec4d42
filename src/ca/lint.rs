//! The pre-issuance check: a second line of defence between building a to-be-signed
//! end-entity certificate and signing it.
//!
//! `check_end_entity` re-reads the `TBSCertificate` that the profile (`super::profile`) built and
//! compares it, field by field, with what the profile promises for this request — computed
//! here independently of the builder. A mismatch (a policy or profile bug, or a CSR value that
//! leaked through) makes the CA refuse to sign, with a [`super::CaError::PreIssuanceCheck`]
//! that names the violation. Nothing is signed that the check has not passed.
//!
//! The set of extensions is data: [`END_ENTITY_EXTENSIONS`] lists each extension a leaf may
//! carry, whether it must, and its criticality, so publishing revocation information (CRL
//! distribution points, authority information access) is one table entry, not new code.

use const_oid::db::{rfc4519, rfc5280, rfc5912};
use const_oid::{AssociatedOid, ObjectIdentifier};
use der::asn1::{PrintableStringRef, Utf8StringRef};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use time::{Month, OffsetDateTime};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, KeyUsages,
    SubjectAltName, SubjectKeyIdentifier,
};
use x509_cert::{TbsCertificate, Version};

use super::csr::KeyKind;
use super::profile::{
    from_x509_time, host_general_name, key_identifier, IssuerContext, ID_KP_CMC_RA,
};
use super::EndEntityRequest;
use crate::model::{Holder, HostName};

/// One extension an end-entity certificate may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowedExtension {
    /// The extension's OID.
    pub oid: ObjectIdentifier,
    /// Human name for messages.
    pub name: &'static str,
    /// The criticality it must have.
    pub critical: bool,
    /// Whether every leaf must carry it.
    pub required: bool,
}

/// CRL distribution points (RFC 5280 4.2.1.13).
const CRL_DISTRIBUTION_POINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.31");
/// Authority information access (RFC 5280 4.2.2.1).
const AUTHORITY_INFO_ACCESS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.1");

/// Every extension an estca end-entity certificate may carry, each at most once; anything
/// else (in particular anything a CSR asked for) is refused. The revocation information is
/// optional: it is present only when a public URL for it is configured.
pub const END_ENTITY_EXTENSIONS: &[AllowedExtension] = &[
    AllowedExtension {
        oid: BasicConstraints::OID,
        name: "basicConstraints",
        critical: true,
        required: true,
    },
    AllowedExtension {
        oid: KeyUsage::OID,
        name: "keyUsage",
        critical: true,
        required: true,
    },
    AllowedExtension {
        oid: ExtendedKeyUsage::OID,
        name: "extendedKeyUsage",
        critical: false,
        required: true,
    },
    AllowedExtension {
        oid: SubjectKeyIdentifier::OID,
        name: "subjectKeyIdentifier",
        critical: false,
        required: true,
    },
    AllowedExtension {
        oid: AuthorityKeyIdentifier::OID,
        name: "authorityKeyIdentifier",
        critical: false,
        required: true,
    },
    AllowedExtension {
        oid: SubjectAltName::OID,
        name: "subjectAltName",
        critical: false,
        required: false,
    },
    AllowedExtension {
        oid: CRL_DISTRIBUTION_POINTS,
        name: "cRLDistributionPoints",
        critical: false,
        required: false,
    },
    AllowedExtension {
        oid: AUTHORITY_INFO_ACCESS,
        name: "authorityInfoAccess",
        critical: false,
        required: false,
    },
];

/// Checks `tbs`, built for `request`, against the end-entity profile; `Err` names the first
/// violation found.
pub(crate) fn check_end_entity(
    tbs: &TbsCertificate,
    ctx: &IssuerContext<'_>,
    request: &EndEntityRequest<'_>,
    signature_algorithm: &AlgorithmIdentifierOwned,
) -> Result<(), String> {
    if tbs.version != Version::V3 {
        return Err(format!("version is {:?}, not v3", tbs.version));
    }
    check_serial(tbs, request)?;
    if &tbs.signature != signature_algorithm {
        return Err(format!(
            "signature algorithm {} is not the CA key's {}",
            tbs.signature.oid, signature_algorithm.oid
        ));
    }
    if !matches!(
        tbs.signature.oid,
        rfc5912::ECDSA_WITH_SHA_256 | rfc5912::ECDSA_WITH_SHA_384
    ) {
        return Err(format!(
            "signature algorithm {} is not ECDSA with SHA-256/384",
            tbs.signature.oid
        ));
    }
    if der_of(&tbs.issuer)? != der_of(ctx.name)? {
        return Err("issuer is not the issuing CA's subject".into());
    }
    check_validity(tbs, ctx, request)?;
    check_subject(tbs, ctx, request.holder)?;
    if der_of(&tbs.subject_public_key_info)? != request.key.spki_der() {
        return Err("subject public key is not the key of the validated CSR".into());
    }
    if tbs.issuer_unique_id.is_some() || tbs.subject_unique_id.is_some() {
        return Err("unique identifiers are not part of the profile".into());
    }
    check_extensions(tbs, ctx, request)
}

fn der_of<T: Encode>(value: &T) -> Result<Vec<u8>, String> {
    value
        .to_der()
        .map_err(|e| format!("re-encoding failed: {e}"))
}

fn check_serial(tbs: &TbsCertificate, request: &EndEntityRequest<'_>) -> Result<(), String> {
    let bytes = tbs.serial_number.as_bytes();
    if bytes.len() != 16 {
        return Err(format!("serial is {} bytes, not 16", bytes.len()));
    }
    if !(0x01..=0x7f).contains(&bytes[0]) {
        return Err(format!(
            "serial's first byte {:#04x} makes it negative or not minimal",
            bytes[0]
        ));
    }
    if bytes != request.serial.serial().as_bytes() {
        return Err("serial is not the one the registration authority reserved".into());
    }
    Ok(())
}

fn check_validity(
    tbs: &TbsCertificate,
    ctx: &IssuerContext<'_>,
    request: &EndEntityRequest<'_>,
) -> Result<(), String> {
    let time = |t| from_x509_time(t).map_err(|e| e.to_string());
    let not_before = time(&tbs.validity.not_before)?;
    let not_after = time(&tbs.validity.not_after)?;
    let asked = request.not_before.unix_timestamp();
    let text = crate::model::rfc3339;
    if not_before.unix_timestamp() != asked {
        return Err(format!(
            "notBefore {} is not the issuance time {}",
            text(not_before),
            text(request.not_before)
        ));
    }
    if !one_calendar_year(not_before, not_after) {
        return Err(format!(
            "validity {} to {} is not exactly one calendar year",
            text(not_before),
            text(not_after)
        ));
    }
    if not_after > ctx.not_after {
        return Err(format!(
            "notAfter {} is after the issuing CA's {}",
            text(not_after),
            text(ctx.not_after)
        ));
    }
    Ok(())
}

/// Same month, day (29 February → 28 February) and time of day, one year later, in UTC.
fn one_calendar_year(from: OffsetDateTime, to: OffsetDateTime) -> bool {
    let leap_day = from.month() == Month::February && from.day() == 29;
    let day_ok = to.day() == from.day()
        || (leap_day && to.day() == 28 && !time::util::is_leap_year(to.year()));
    to.year() == from.year() + 1 && to.month() == from.month() && day_ok && to.time() == from.time()
}

/// The values of the subject's RDNs, each of which must hold exactly one attribute.
fn subject_attributes(tbs: &TbsCertificate) -> Result<Vec<(ObjectIdentifier, String)>, String> {
    let mut out = Vec::new();
    for rdn in tbs.subject.0.iter() {
        let atvs = rdn.0.as_slice();
        let [atv] = atvs else {
            return Err(format!(
                "a subject RDN holds {} attributes, not one",
                atvs.len()
            ));
        };
        let text = if atv.oid == rfc4519::C {
            atv.value
                .decode_as::<PrintableStringRef<'_>>()
                .map(|s| s.as_str().to_owned())
        } else {
            atv.value
                .decode_as::<Utf8StringRef<'_>>()
                .map(|s| s.as_str().to_owned())
        }
        .map_err(|_| format!("subject attribute {} has the wrong string type", atv.oid))?;
        out.push((atv.oid, text));
    }
    Ok(out)
}

fn check_subject(
    tbs: &TbsCertificate,
    ctx: &IssuerContext<'_>,
    holder: &Holder,
) -> Result<(), String> {
    let mut expected = vec![
        (rfc4519::C, ctx.country.to_owned()),
        (rfc4519::O, ctx.organization.to_owned()),
        (rfc4519::OU, ctx.issuing_name.to_owned()),
    ];
    match holder {
        Holder::Account {
            id,
            contract,
            role,
            issued_num,
        } => {
            if *issued_num == 0 {
                return Err("CERTISSUEDNUM 0: the count is 1-based".into());
            }
            expected.push((rfc4519::OU, format!("USERTYPE - {}", role.usertype())));
            expected.push((rfc4519::OU, format!("CERTISSUEDNUM - {issued_num}")));
            let cn = ctx
                .common_name_template
                .replace("{id}", id.as_str())
                .replace("{contract}", contract.as_str());
            expected.push((rfc4519::CN, cn));
        }
        Holder::App { name } => {
            expected.push((rfc4519::OU, "APP".to_owned()));
            expected.push((rfc4519::CN, name.to_string()));
        }
        Holder::TlsServer { .. } | Holder::OcspSigner => {
            return Err("an end-entity certificate cannot name one of estca's services".into());
        }
    }
    let actual = subject_attributes(tbs)?;
    if actual.len() != expected.len() {
        return Err(format!(
            "subject has {} attributes, the profile {}",
            actual.len(),
            expected.len()
        ));
    }
    for (i, ((oid, value), (want_oid, want))) in actual.iter().zip(&expected).enumerate() {
        if oid != want_oid || value != want {
            return Err(format!(
                "subject attribute {} is {oid}={value:?}, the profile says {want_oid}={want:?}",
                i + 1
            ));
        }
    }
    Ok(())
}

fn check_extensions(
    tbs: &TbsCertificate,
    ctx: &IssuerContext<'_>,
    request: &EndEntityRequest<'_>,
) -> Result<(), String> {
    let extensions = tbs.extensions.as_deref().unwrap_or_default();
    let mut seen: Vec<ObjectIdentifier> = Vec::new();
    for ext in extensions {
        let Some(rule) = END_ENTITY_EXTENSIONS.iter().find(|r| r.oid == ext.extn_id) else {
            return Err(format!(
                "extension {} is not in the profile (a CSR's extensions are never copied)",
                ext.extn_id
            ));
        };
        if seen.contains(&ext.extn_id) {
            return Err(format!("extension {} appears twice", rule.name));
        }
        seen.push(ext.extn_id);
        if ext.critical != rule.critical {
            return Err(format!(
                "extension {} is {}critical; the profile says {}critical",
                rule.name,
                if ext.critical { "" } else { "not " },
                if rule.critical { "" } else { "not " }
            ));
        }
        check_extension_value(rule, ext.extn_value.as_bytes(), tbs, ctx, request)?;
    }
    if let Some(missing) = END_ENTITY_EXTENSIONS
        .iter()
        .find(|r| r.required && !seen.contains(&r.oid))
    {
        return Err(format!("required extension {} is missing", missing.name));
    }
    if !request.hosts.is_empty() && !seen.contains(&SubjectAltName::OID) {
        return Err("subjectAltName is missing: the application serves TLS for hosts".into());
    }
    Ok(())
}

fn check_extension_value(
    rule: &AllowedExtension,
    value: &[u8],
    tbs: &TbsCertificate,
    ctx: &IssuerContext<'_>,
    request: &EndEntityRequest<'_>,
) -> Result<(), String> {
    let unreadable = |e: der::Error| format!("extension {} is unreadable: {e}", rule.name);
    match rule.oid {
        oid if oid == BasicConstraints::OID => {
            let bc = BasicConstraints::from_der(value).map_err(unreadable)?;
            if bc.ca || bc.path_len_constraint.is_some() {
                return Err("basicConstraints must be CA:FALSE without a path length".into());
            }
        }
        oid if oid == KeyUsage::OID => {
            let ku = KeyUsage::from_der(value).map_err(unreadable)?;
            let expected = match request.key.kind() {
                KeyKind::Rsa { .. } => KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment,
                _ => KeyUsages::DigitalSignature.into(),
            };
            if ku.0 != expected {
                return Err(format!(
                    "keyUsage is {:?}, the profile says {:?} for a {} key",
                    ku.0,
                    expected,
                    request.key.kind()
                ));
            }
        }
        oid if oid == ExtendedKeyUsage::OID => {
            let eku = ExtendedKeyUsage::from_der(value).map_err(unreadable)?;
            // An application is also a registration authority (id-kp-cmcRA); a person is not.
            let (expected, says): (&[ObjectIdentifier], _) = match request.holder {
                Holder::App { .. } if !request.hosts.is_empty() => (
                    &[
                        rfc5280::ID_KP_SERVER_AUTH,
                        rfc5280::ID_KP_CLIENT_AUTH,
                        ID_KP_CMC_RA,
                    ],
                    "serverAuth, clientAuth and cmcRA for an application serving TLS",
                ),
                Holder::App { .. } => (
                    &[rfc5280::ID_KP_CLIENT_AUTH, ID_KP_CMC_RA],
                    "clientAuth and cmcRA for an application",
                ),
                _ => (&[rfc5280::ID_KP_CLIENT_AUTH], "clientAuth only"),
            };
            if eku.0 != expected {
                return Err(format!(
                    "extendedKeyUsage is {:?}, the profile says {says}",
                    eku.0.iter().map(|o| o.to_string()).collect::<Vec<_>>()
                ));
            }
        }
        oid if oid == SubjectKeyIdentifier::OID => {
            let ski = SubjectKeyIdentifier::from_der(value).map_err(unreadable)?;
            if ski.0.as_bytes() != key_identifier(&tbs.subject_public_key_info).as_slice() {
                return Err("subjectKeyIdentifier does not identify the subject key".into());
            }
        }
        oid if oid == AuthorityKeyIdentifier::OID => {
            let aki = AuthorityKeyIdentifier::from_der(value).map_err(unreadable)?;
            let ok = aki.key_identifier.as_ref().map(|k| k.as_bytes()) == Some(ctx.key_id)
                && aki.authority_cert_issuer.is_none()
                && aki.authority_cert_serial_number.is_none();
            if !ok {
                return Err(
                    "authorityKeyIdentifier is not the issuing CA's key identifier alone".into(),
                );
            }
        }
        oid if oid == SubjectAltName::OID => {
            let san = SubjectAltName::from_der(value).map_err(unreadable)?;
            if !matches!(request.holder, Holder::App { .. }) {
                return Err("subjectAltName on a person's certificate".into());
            }
            let expected = request
                .hosts
                .iter()
                .map(host_general_name)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            if san.0 != expected {
                return Err(format!(
                    "subjectAltName does not name exactly the application's hosts ({})",
                    HostName::list(request.hosts)
                ));
            }
        }
        // Optional entries whose content another component owns: their presence and
        // criticality were checked above.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use der::asn1::{OctetString, SetOfVec};
    use der::Any;
    use time::macros::datetime;
    use x509_cert::attr::AttributeTypeAndValue;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    use x509_cert::ext::Extension;
    use x509_cert::name::RelativeDistinguishedName;
    use x509_cert::serial_number::SerialNumber;

    use super::*;
    use crate::ca::{validate_csr, CertificateAuthority, CsrKey};
    use crate::config::{CaConfig, KeyAlgorithm};
    use crate::model::{Role, Serial};
    use crate::store::ReservedSerial;

    struct Fixture {
        _dir: tempfile::TempDir,
        ca: CertificateAuthority,
        key: CsrKey,
        holder: Holder,
        hosts: Vec<HostName>,
        serial: ReservedSerial,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let config = CaConfig {
            organization: "The Shinkin Banks Information System Center Co.,Ltd.".into(),
            root_name: "Lint Root".into(),
            issuing_name: "Lint Issuing CA - TEST".into(),
            ..crate::ca::tests::config(dir.path(), KeyAlgorithm::P256, 20)
        };
        CertificateAuthority::init(&config, None).unwrap();
        let ca = CertificateAuthority::load(&config, "{id} {contract}").unwrap();
        let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let csr = rcgen::CertificateParams::default()
            .serialize_request(&kp)
            .unwrap();
        Fixture {
            _dir: dir,
            ca,
            key: validate_csr(csr.der()).unwrap(),
            holder: Holder::Account {
                id: "nozawa1".parse().unwrap(),
                contract: "5110".parse().unwrap(),
                role: Role::User,
                issued_num: 3,
            },
            hosts: Vec::new(),
            serial: ReservedSerial::unreserved_for_tests(),
        }
    }

    impl Fixture {
        fn request(&self) -> EndEntityRequest<'_> {
            EndEntityRequest {
                serial: &self.serial,
                holder: &self.holder,
                not_before: datetime!(2026-02-03 04:05:06 UTC),
                key: &self.key,
                hosts: &self.hosts,
            }
        }

        fn tbs(&self) -> TbsCertificate {
            super::super::profile::end_entity_tbs(
                &self.ca.issuer_context(),
                &self.ca.key,
                &self.request(),
            )
            .unwrap()
            .0
        }

        /// The check's verdict on the profile's TBS after `tamper`.
        fn check(&self, tamper: impl FnOnce(&mut TbsCertificate)) -> Result<(), String> {
            let mut tbs = self.tbs();
            tamper(&mut tbs);
            check_end_entity(
                &tbs,
                &self.ca.issuer_context(),
                &self.request(),
                &self.ca.key.signature_algorithm(),
            )
        }

        fn refused(&self, what: &str, tamper: impl FnOnce(&mut TbsCertificate)) -> String {
            match self.check(tamper) {
                Ok(()) => panic!("the check let a TBS with {what} through"),
                Err(violation) => violation,
            }
        }
    }

    fn ext_mut(tbs: &mut TbsCertificate, oid: ObjectIdentifier) -> &mut Extension {
        tbs.extensions
            .as_mut()
            .unwrap()
            .iter_mut()
            .find(|e| e.extn_id == oid)
            .unwrap()
    }

    fn set_value<T: Encode>(tbs: &mut TbsCertificate, oid: ObjectIdentifier, value: &T) {
        ext_mut(tbs, oid).extn_value = OctetString::new(value.to_der().unwrap()).unwrap();
    }

    #[test]
    fn the_profiles_own_certificates_pass() {
        let f = fixture();
        f.check(|_| {}).unwrap();
        // And signing goes through the check.
        f.ca.sign_end_entity(&f.request()).unwrap();
    }

    #[test]
    fn validity_other_than_one_calendar_year_is_refused() {
        let f = fixture();
        let v = f.refused("a year and a day", |tbs| {
            tbs.validity.not_after =
                super::super::profile::to_x509_time(datetime!(2027-02-04 04:05:06 UTC)).unwrap();
        });
        assert!(v.contains("one calendar year"), "{v}");
        let v = f.refused("a moved notBefore", |tbs| {
            tbs.validity.not_before =
                super::super::profile::to_x509_time(datetime!(2026-02-03 04:05:05 UTC)).unwrap();
        });
        assert!(v.contains("notBefore"), "{v}");
        assert!(one_calendar_year(
            datetime!(2028-02-29 00:00:00 UTC),
            datetime!(2029-02-28 00:00:00 UTC)
        ));
        assert!(!one_calendar_year(
            datetime!(2028-02-29 00:00:00 UTC),
            datetime!(2029-03-01 00:00:00 UTC)
        ));
    }

    #[test]
    fn serials_of_the_wrong_length_or_sign_are_refused() {
        let f = fixture();
        let v = f.refused("a 17-byte serial", |tbs| {
            let mut bytes = vec![0x01];
            bytes.extend_from_slice(f.serial.serial().as_bytes());
            tbs.serial_number = SerialNumber::new(&bytes).unwrap();
        });
        assert!(v.contains("not 16"), "{v}");
        let v = f.refused("another serial", |tbs| {
            tbs.serial_number = SerialNumber::new(Serial::random().as_bytes()).unwrap();
        });
        assert!(v.contains("reserved"), "{v}");
    }

    #[test]
    fn subject_order_and_contents_are_checked() {
        let f = fixture();
        let v = f.refused("OUs swapped", |tbs| tbs.subject.0.swap(3, 4));
        assert!(v.contains("subject attribute 4"), "{v}");
        let v = f.refused("a CSR's CN", |tbs| {
            let cn = Any::encode_from(&Utf8StringRef::new("evil").unwrap()).unwrap();
            tbs.subject.0[5] = RelativeDistinguishedName(
                SetOfVec::try_from(vec![AttributeTypeAndValue {
                    oid: rfc4519::CN,
                    value: cn,
                }])
                .unwrap(),
            );
        });
        assert!(v.contains("evil"), "{v}");
        let v = f.refused("an extra RDN", |tbs| {
            let extra = tbs.subject.0[2].clone();
            tbs.subject.0.push(extra);
        });
        assert!(v.contains("7 attributes"), "{v}");
    }

    #[test]
    fn an_application_is_a_registration_authority_and_a_person_is_not() {
        let mut f = fixture();
        // A person's certificate claiming cmcRA is refused.
        let v = f.refused("cmcRA on a person", |tbs| {
            set_value(
                tbs,
                ExtendedKeyUsage::OID,
                &ExtendedKeyUsage(vec![rfc5280::ID_KP_CLIENT_AUTH, ID_KP_CMC_RA]),
            )
        });
        assert!(v.contains("clientAuth only"), "{v}");
        f.holder = Holder::App {
            name: "bankapp".parse().unwrap(),
        };
        // The profile gives an application both, and the check passes it.
        f.check(|_| {}).unwrap();
        let v = f.refused("an application without cmcRA", |tbs| {
            set_value(
                tbs,
                ExtendedKeyUsage::OID,
                &ExtendedKeyUsage(vec![rfc5280::ID_KP_CLIENT_AUTH]),
            )
        });
        assert!(v.contains("cmcRA for an application"), "{v}");
        f.ca.sign_end_entity(&f.request()).unwrap();
    }

    #[test]
    fn an_application_serving_tls_names_exactly_its_hosts_with_server_auth() {
        let mut f = fixture();
        f.holder = Holder::App {
            name: "raproxy".parse().unwrap(),
        };
        f.hosts = vec![
            "ra.example.test".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        ];
        f.check(|_| {}).unwrap();
        let der = f.ca.sign_end_entity(&f.request()).unwrap().der;
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        let san = cert.subject_alternative_name().unwrap().unwrap();
        assert!(!san.critical);
        assert_eq!(
            format!("{:?}", san.value.general_names),
            "[DNSName(\"ra.example.test\"), IPAddress([127, 0, 0, 1])]"
        );
        let eku = cert.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && eku.client_auth);
        assert_eq!(eku.other.len(), 1, "cmcRA");
        // Read back as written: the certificate is the record of the hosts.
        assert_eq!(crate::ca::certificate_hosts(&der), f.hosts);

        // Without serverAuth, or naming another host, or none: refused.
        let v = f.refused("an application serving TLS without serverAuth", |tbs| {
            set_value(
                tbs,
                ExtendedKeyUsage::OID,
                &ExtendedKeyUsage(vec![rfc5280::ID_KP_CLIENT_AUTH, ID_KP_CMC_RA]),
            )
        });
        assert!(v.contains("serverAuth, clientAuth and cmcRA"), "{v}");
        let v = f.refused("another host", |tbs| {
            set_value(
                tbs,
                SubjectAltName::OID,
                &SubjectAltName(vec![GeneralName::DnsName(
                    der::asn1::Ia5String::new("bank.example").unwrap(),
                )]),
            )
        });
        assert!(v.contains("exactly the application's hosts"), "{v}");
        let v = f.refused("no subjectAltName", |tbs| {
            tbs.extensions
                .as_mut()
                .unwrap()
                .retain(|e| e.extn_id != SubjectAltName::OID)
        });
        assert!(v.contains("subjectAltName is missing"), "{v}");

        // A client-only application, and a person, never carry one.
        f.hosts.clear();
        let with_san = |tbs: &mut TbsCertificate| {
            tbs.extensions.as_mut().unwrap().push(
                crate::ca::profile::extension(
                    &SubjectAltName(vec![GeneralName::DnsName(
                        der::asn1::Ia5String::new("ra.example.test").unwrap(),
                    )]),
                    false,
                )
                .unwrap(),
            )
        };
        let v = f.refused("a host on a client-only application", with_san);
        assert!(v.contains("exactly the application's hosts"), "{v}");
        f.holder = fixture().holder;
        let v = f.refused("a host on a person", with_san);
        assert!(v.contains("person's certificate"), "{v}");
        // And the profile refuses to build a person's certificate naming a host.
        f.hosts = vec!["ra.example.test".parse().unwrap()];
        let e = f.ca.sign_end_entity(&f.request()).unwrap_err().to_string();
        assert!(
            e.contains("only an application's certificate names hosts"),
            "{e}"
        );
    }

    #[test]
    fn usage_and_constraints_are_checked() {
        let f = fixture();
        let v = f.refused("serverAuth", |tbs| {
            set_value(
                tbs,
                ExtendedKeyUsage::OID,
                &ExtendedKeyUsage(vec![rfc5280::ID_KP_CLIENT_AUTH, rfc5280::ID_KP_SERVER_AUTH]),
            )
        });
        assert!(v.contains("clientAuth only"), "{v}");
        let v = f.refused("keyEncipherment on an EC key", |tbs| {
            set_value(
                tbs,
                KeyUsage::OID,
                &KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyEncipherment),
            )
        });
        assert!(v.contains("keyUsage"), "{v}");
        let v = f.refused("CA:TRUE", |tbs| {
            set_value(
                tbs,
                BasicConstraints::OID,
                &BasicConstraints {
                    ca: true,
                    path_len_constraint: None,
                },
            )
        });
        assert!(v.contains("CA:FALSE"), "{v}");
        let v = f.refused("a non-critical basicConstraints", |tbs| {
            ext_mut(tbs, BasicConstraints::OID).critical = false;
        });
        assert!(v.contains("basicConstraints is not critical"), "{v}");
    }

    #[test]
    fn the_extension_set_is_exactly_the_profiles() {
        let f = fixture();
        let v = f.refused("a policy a CSR asked for", |tbs| {
            let policies = x509_cert::ext::pkix::CertificatePolicies(vec![
                x509_cert::ext::pkix::certpolicy::PolicyInformation {
                    policy_identifier: ObjectIdentifier::new_unwrap("2.5.29.32.0"),
                    policy_qualifiers: None,
                },
            ]);
            tbs.extensions.as_mut().unwrap().push(Extension {
                extn_id: x509_cert::ext::pkix::CertificatePolicies::OID,
                critical: false,
                extn_value: OctetString::new(policies.to_der().unwrap()).unwrap(),
            });
        });
        assert!(v.contains("not in the profile"), "{v}");
        // A subjectAltName is in the profile for applications serving TLS only.
        let v = f.refused("a subjectAltName from a CSR", |tbs| {
            let san = SubjectAltName(vec![GeneralName::DnsName(
                der::asn1::Ia5String::new("evil.example").unwrap(),
            )]);
            tbs.extensions.as_mut().unwrap().push(Extension {
                extn_id: SubjectAltName::OID,
                critical: false,
                extn_value: OctetString::new(san.to_der().unwrap()).unwrap(),
            });
        });
        assert!(v.contains("person's certificate"), "{v}");
        let v = f.refused("no subjectKeyIdentifier", |tbs| {
            tbs.extensions
                .as_mut()
                .unwrap()
                .retain(|e| e.extn_id != SubjectKeyIdentifier::OID);
        });
        assert!(v.contains("subjectKeyIdentifier is missing"), "{v}");
        let v = f.refused("a duplicated keyUsage", |tbs| {
            let ku = ext_mut(tbs, KeyUsage::OID).clone();
            tbs.extensions.as_mut().unwrap().push(ku);
        });
        assert!(v.contains("twice"), "{v}");
    }

    #[test]
    fn the_key_must_be_the_csrs_and_signing_refuses_on_a_violation() {
        let f = fixture();
        let other = fixture();
        let v = f.refused("another key", |tbs| {
            tbs.subject_public_key_info = other.tbs().subject_public_key_info;
        });
        assert!(v.contains("public key"), "{v}");
        // A request the profile cannot satisfy (CERTISSUEDNUM 0) is refused by signing itself.
        let holder = Holder::Account {
            id: "nozawa1".parse().unwrap(),
            contract: "5110".parse().unwrap(),
            role: Role::User,
            issued_num: 0,
        };
        let err =
            f.ca.sign_end_entity(&EndEntityRequest {
                holder: &holder,
                ..f.request()
            })
            .unwrap_err();
        assert!(
            matches!(err, crate::ca::CaError::PreIssuanceCheck { .. }),
            "{err}"
        );
        assert!(err.to_string().contains("CERTISSUEDNUM 0"), "{err}");
    }
}

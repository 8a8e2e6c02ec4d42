use time::macros::datetime;
use time::Duration;

use super::*;

#[test]
fn the_outlook_warns_within_the_lead_and_is_stale_once_next_update_has_passed() {
    let next_update = datetime!(2027-01-31 00:00:00 UTC);
    let lead = Duration::days(7);
    assert_eq!(
        ArlOutlook::at(datetime!(2027-01-01 00:00:00 UTC), next_update, lead),
        ArlOutlook::Fresh
    );
    assert_eq!(
        ArlOutlook::at(datetime!(2027-01-24 00:00:00 UTC), next_update, lead),
        ArlOutlook::Soon { hours_left: 168 }
    );
    assert_eq!(
        ArlOutlook::at(datetime!(2027-01-30 23:00:00 UTC), next_update, lead),
        ArlOutlook::Soon { hours_left: 1 }
    );
    assert_eq!(
        ArlOutlook::at(next_update, next_update, lead),
        ArlOutlook::Stale
    );
    assert_eq!(
        ArlOutlook::at(datetime!(2027-03-01 00:00:00 UTC), next_update, lead),
        ArlOutlook::Stale
    );
}

/// A clock stopped at one instant.
struct FixedClock(OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

fn new_root(dir: &Path) -> crate::ca::root::OfflineRoot {
    let config = crate::config::CaConfig {
        root_name: format!("Root of {}", dir.display()),
        ..crate::ca::tests::config(dir, crate::config::KeyAlgorithm::P256, 10)
    };
    crate::ca::root::OfflineRoot::init(dir, &config, None, Duration::days(30)).unwrap();
    crate::ca::root::OfflineRoot::open(dir, None).unwrap()
}

#[test]
fn the_arl_is_served_only_when_the_root_signed_it_and_is_re_read_when_it_changes() {
    let mine = tempfile::tempdir().unwrap();
    let other = tempfile::tempdir().unwrap();
    let root = new_root(mine.path());
    new_root(other.path());
    let path = mine.path().join("root.crl");
    let metrics = Metrics::new();
    let now = OffsetDateTime::now_utc();
    let crl = RootCrl::new(
        path.clone(),
        true,
        Some(root.certificate_der().to_vec()),
        Duration::days(7),
        Arc::new(FixedClock(now)),
        metrics.clone(),
    );
    let first = crl.current().expect("served");
    assert_eq!(first.number, Some(1));
    assert_eq!(first.der.as_ref(), std::fs::read(&path).unwrap());
    assert!(metrics.render(0).contains(&format!(
        "estca_root_crl_next_update_timestamp_seconds {}",
        first.next_update.unix_timestamp()
    )));

    // Another root's ARL is refused; the first stays served.
    assert!(matches!(
        read_arl(&other.path().join("root.crl"), Some(root.certificate_der())),
        Err(ArlError::Invalid { .. })
    ));
    let original = std::fs::read(&path).unwrap();
    std::fs::copy(other.path().join("root.crl"), &path).unwrap();
    assert_eq!(crl.current().unwrap().number, Some(1));

    // A new ARL of this root is picked up.
    std::fs::write(&path, original).unwrap();
    root.sign_arl(now.replace_nanosecond(0).unwrap(), Duration::days(30))
        .unwrap();
    let second = crl.current().unwrap();
    assert_eq!(second.number, Some(2));
}

#[test]
fn without_a_root_certificate_no_arl_is_served() {
    let mine = tempfile::tempdir().unwrap();
    new_root(mine.path());
    assert!(matches!(
        read_arl(&mine.path().join("root.crl"), None),
        Err(ArlError::Invalid { .. })
    ));
}

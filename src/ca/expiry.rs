//! How long the issuing CA can go on issuing.
//!
//! An end-entity certificate is valid one calendar year and never outlives the issuing CA
//! (DESIGN.md section 2), so enrollment stops one year before the issuing CA's notAfter, not
//! at it. The operator is warned a configurable lead time before its notAfter
//! (`ca.expiry_warning_days`), at start and at every reload, and the metrics carry both
//! instants so that alerting fires long before; past the point where a one-year certificate
//! no longer fits, enrollment answers 503 with [`CaError::CaExpiresTooSoon`]. The remedy is a
//! new issuing CA generation (`estca ca rollover`, [`super::rollover`]).

use time::{Duration, OffsetDateTime, UtcOffset};

use super::{profile, CaError, CertificateAuthority};

/// The issuing CA's expiry as seen at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaExpiry {
    /// Its notAfter is further away than the warning lead time.
    Distant,
    /// Its notAfter is within the lead time; enrollment goes on until `issuance_ends`.
    Approaching {
        /// The issuing CA's notAfter.
        not_after: OffsetDateTime,
        /// When enrollment stops: one calendar year before `not_after`.
        issuance_ends: OffsetDateTime,
    },
    /// A one-year certificate no longer fits: enrollment is refused until a new issuing CA
    /// is in place.
    IssuanceStopped {
        /// The issuing CA's notAfter.
        not_after: OffsetDateTime,
    },
}

impl CaExpiry {
    /// Logs the outlook for the operator: nothing when distant, a warning when approaching,
    /// an error when issuance has stopped.
    pub fn log(&self) {
        match self {
            CaExpiry::Distant => {}
            CaExpiry::Approaching {
                not_after,
                issuance_ends,
            } => tracing::warn!(
                not_after = %crate::model::rfc3339(*not_after),
                enrollment_stops = %crate::model::rfc3339(*issuance_ends),
                "the issuing CA expires soon; enrollment stops one year before it does, when a one-year certificate no longer fits: roll over to a new issuing CA before then (`estca ca rollover`, then reload)"
            ),
            CaExpiry::IssuanceStopped { not_after } => tracing::error!(
                not_after = %crate::model::rfc3339(*not_after),
                "the issuing CA expires within a year, so no one-year certificate fits and every enrollment is refused (503): roll over to a new issuing CA (`estca ca rollover`, then reload)"
            ),
        }
    }
}

/// `t` in UTC, one calendar year earlier; 29 February becomes 28 February.
fn one_year_before(t: OffsetDateTime) -> Result<OffsetDateTime, CaError> {
    let t = t.to_offset(UtcOffset::UTC);
    let out_of_range = || CaError::Internal(format!("{t} minus one year is out of range"));
    let year = t.year().checked_sub(1).ok_or_else(out_of_range)?;
    let day =
        if t.month() == time::Month::February && t.day() == 29 && !time::util::is_leap_year(year) {
            28
        } else {
            t.day()
        };
    let date = time::Date::from_calendar_date(year, t.month(), day).map_err(|_| out_of_range())?;
    Ok(t.replace_date(date))
}

impl CertificateAuthority {
    /// When enrollment stops: one calendar year before the issuing CA's notAfter, when a
    /// one-year certificate no longer fits.
    pub fn issuance_ends(&self) -> Result<OffsetDateTime, CaError> {
        one_year_before(self.issuing_not_after)
    }

    /// The outlook at `now`, warning `lead` before the issuing CA's notAfter. Issuance has
    /// stopped exactly when a certificate starting at `now` would outlive the issuing CA,
    /// the condition under which signing refuses.
    pub fn expiry_at(&self, now: OffsetDateTime, lead: Duration) -> Result<CaExpiry, CaError> {
        let not_after = self.issuing_not_after;
        // Whole seconds, as certificates are signed.
        let now = now
            .replace_nanosecond(0)
            .map_err(|e| CaError::Internal(e.to_string()))?;
        if profile::add_years(now, 1)? > not_after {
            return Ok(CaExpiry::IssuanceStopped { not_after });
        }
        if not_after - now <= lead {
            return Ok(CaExpiry::Approaching {
                not_after,
                issuance_ends: self.issuance_ends()?,
            });
        }
        Ok(CaExpiry::Distant)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    #[test]
    fn one_year_before_keeps_the_instant_and_clamps_29_february() {
        assert_eq!(
            one_year_before(datetime!(2030-06-15 12:34:56 UTC)).unwrap(),
            datetime!(2029-06-15 12:34:56 UTC)
        );
        assert_eq!(
            one_year_before(datetime!(2028-02-29 00:00 UTC)).unwrap(),
            datetime!(2027-02-28 00:00 UTC)
        );
        // A certificate starting then fits: one year on is at most the CA's notAfter.
        let t = one_year_before(datetime!(2028-02-29 00:00 UTC)).unwrap();
        assert!(profile::add_years(t, 1).unwrap() <= datetime!(2028-02-29 00:00 UTC));
    }
}

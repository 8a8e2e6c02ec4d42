//! Who counts as one source for the per-source limits (failed logins, connections).
//!
//! An IPv4 address is one source. An IPv6 host usually holds a whole /64 (SLAAC, privacy
//! addresses) and can pick a new /128 for every request, so IPv6 addresses are aggregated by
//! a configurable prefix (`server.ipv6_source_prefix`, 64 by default). An IPv4-mapped IPv6
//! address (`::ffff:192.0.2.1`, what a dual-stack socket reports for an IPv4 client) is the
//! IPv4 address it maps.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// The longest IPv6 prefix: every address its own source.
pub const MAX_IPV6_PREFIX: u8 = 128;

/// One source for the per-source limits: an IPv4 address, or an IPv6 network of the
/// configured prefix length (its host bits zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceKey {
    network: IpAddr,
    prefix: u8,
}

impl SourceKey {
    /// The source `ip` belongs to, aggregating IPv6 by `ipv6_prefix` bits (clamped to
    /// 1..=128).
    pub fn new(ip: IpAddr, ipv6_prefix: u8) -> Self {
        match ip {
            IpAddr::V4(v4) => Self {
                network: IpAddr::V4(v4),
                prefix: 32,
            },
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Self {
                    network: IpAddr::V4(v4),
                    prefix: 32,
                },
                None => {
                    let prefix = ipv6_prefix.clamp(1, MAX_IPV6_PREFIX);
                    let mask = u128::MAX << (MAX_IPV6_PREFIX - prefix);
                    Self {
                        network: IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask)),
                        prefix,
                    }
                }
            },
        }
    }
}

impl fmt::Display for SourceKey {
    /// `192.0.2.1`, or `2001:db8:1:2::/64`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.network {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/{}", self.prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str, prefix: u8) -> SourceKey {
        SourceKey::new(ip.parse().unwrap(), prefix)
    }

    #[test]
    fn ipv6_addresses_of_one_prefix_are_one_source() {
        assert_eq!(key("2001:db8:1:2::1", 64), key("2001:db8:1:2:ffff::9", 64));
        assert_ne!(key("2001:db8:1:2::1", 64), key("2001:db8:1:3::1", 64));
        assert_eq!(key("2001:db8:1:2::1", 64).to_string(), "2001:db8:1:2::/64");
        assert_ne!(key("2001:db8::1", 128), key("2001:db8::2", 128));
        assert_eq!(key("2001:db8:1:2::1", 48), key("2001:db8:1:7::1", 48));
    }

    #[test]
    fn ipv4_is_per_address_even_when_mapped() {
        assert_ne!(key("192.0.2.1", 64), key("192.0.2.2", 64));
        assert_eq!(key("::ffff:192.0.2.1", 64), key("192.0.2.1", 64));
        assert_eq!(key("::ffff:192.0.2.1", 64).to_string(), "192.0.2.1");
    }
}

//! Who counts as one client for the per-IP limits (the failed-authentication
//! throttle and `--max-pending-per-ip`): an IPv4 address, or an IPv6 /64.

use std::net::IpAddr;

/// One client for the per-IP limits. An IPv6 address is keyed by its first
/// 64 bits (one customer network: a host there can pick any of 2^64
/// addresses); an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) by its IPv4
/// address. Logs and `REMOTE_ADDR` still show the whole address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClientKey {
    /// An IPv4 client, reached over IPv4 or IPv4-mapped IPv6.
    V4([u8; 4]),
    /// An IPv6 client's network: the address's first 64 bits.
    V6Network(u64),
}

impl From<IpAddr> for ClientKey {
    fn from(ip: IpAddr) -> ClientKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => ClientKey::V4(v4.octets()),
            IpAddr::V6(v6) => ClientKey::V6Network((v6.to_bits() >> 64) as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> ClientKey {
        ClientKey::from(text.parse::<IpAddr>().expect("valid in this test"))
    }

    #[test]
    fn an_ipv6_address_is_keyed_by_its_64() {
        assert_eq!(
            key("2001:db8:1:2::1"),
            key("2001:db8:1:2:aaaa:bbbb:cccc:dddd")
        );
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
    }

    #[test]
    fn an_ipv4_mapped_address_is_keyed_as_ipv4() {
        assert_eq!(key("::ffff:1.2.3.4"), key("1.2.3.4"));
        assert_ne!(key("1.2.3.4"), key("1.2.3.5"));
        // Only the mapped form is IPv4: the deprecated compatible form is IPv6.
        assert_ne!(key("::1.2.3.4"), key("1.2.3.4"));
    }
}

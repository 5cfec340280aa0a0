//! Subnets: the network's IPv4 [`Subnet`] and IPv6 [`Subnet6`], the host's address in each and
//! each node's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::{Error, Result};

/// An IPv4 subnet in CIDR form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet {
    /// The network address (host bits zero).
    pub addr: Ipv4Addr,
    /// The prefix length, 8 to 30.
    pub prefix: u8,
}

impl Subnet {
    /// The stand-in a check renders templates with before the real subnet is picked.
    pub(crate) const SAMPLE: Subnet = Subnet { addr: Ipv4Addr::new(10, 200, 0, 0), prefix: 24 };

    /// The network address and prefix length, as routes take them.
    pub fn range(&self) -> (IpAddr, u8) {
        (self.addr.into(), self.prefix)
    }

    /// The subnet of `addr/prefix`, host bits cleared.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Subnet> {
        if !(8..=30).contains(&prefix) {
            return Err(Error::invalid("subnet", format!("prefix /{prefix} must be from /8 to /30")));
        }
        let mask = u32::MAX << (32 - prefix);
        Ok(Subnet { addr: Ipv4Addr::from(u32::from(addr) & mask), prefix })
    }

    /// How many addresses the subnet spans.
    pub fn size(&self) -> u32 {
        1 << (32 - self.prefix)
    }

    /// The `n`-th address of the subnet (0 is the network address).
    pub fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + n)
    }

    /// The host's address: the first usable one.
    pub fn host(&self) -> Ipv4Addr {
        self.nth(1)
    }

    /// The address of node `index`: the ones after the host's.
    pub fn node(&self, index: usize) -> Ipv4Addr {
        self.nth(2 + index as u32)
    }

    /// How many nodes fit (the network, host and broadcast addresses are taken).
    pub fn capacity(&self) -> usize {
        self.size() as usize - 3
    }

    /// Whether the two subnets share any address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.overlaps_range(other.addr, other.prefix)
    }

    /// Whether the subnet shares an address with `addr/prefix` (any prefix, 0 to 32).
    pub fn overlaps_range(&self, addr: Ipv4Addr, prefix: u8) -> bool {
        let p = self.prefix.min(prefix);
        let mask = u32::MAX.checked_shl(32 - u32::from(p)).unwrap_or(0);
        u32::from(self.addr) & mask == u32::from(addr) & mask
    }

    /// Refuses the ranges a network cannot live in: "this network", loopback, link-local,
    /// multicast and the reserved range with the broadcast address.
    pub fn check_usable(&self) -> Result<()> {
        let reserved: [(Ipv4Addr, u8, &str); 5] = [
            (Ipv4Addr::new(0, 0, 0, 0), 8, "\"this network\" (0.0.0.0/8)"),
            (Ipv4Addr::new(127, 0, 0, 0), 8, "loopback (127.0.0.0/8)"),
            (Ipv4Addr::new(169, 254, 0, 0), 16, "link-local (169.254.0.0/16)"),
            (Ipv4Addr::new(224, 0, 0, 0), 4, "multicast (224.0.0.0/4)"),
            (Ipv4Addr::new(240, 0, 0, 0), 4, "reserved, with the broadcast address (240.0.0.0/4)"),
        ];
        match reserved.iter().find(|(addr, prefix, _)| self.overlaps_range(*addr, *prefix)) {
            Some((_, _, what)) => Err(Error::invalid(
                "subnet",
                format!(
                    "{self} is in the {what} range, which no network can use; pick a private one such as \
                     10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16, or leave it unset"
                ),
            )),
            None => Ok(()),
        }
    }
}

impl std::fmt::Display for Subnet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Subnet {
    type Err = Error;
    fn from_str(s: &str) -> Result<Subnet> {
        let bad = || Error::invalid("subnet", format!("'{s}' is not an IPv4 subnet like 10.200.0.0/24"));
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        Subnet::new(addr.parse().map_err(|_| bad())?, prefix.parse().map_err(|_| bad())?)
    }
}

/// An IPv6 prefix in CIDR form: the network's IPv6 addresses (`::1` is the host's, `::2` on
/// the nodes'). A /64 or shorter, as IPv6 links are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Subnet6 {
    /// The network address (host bits zero).
    pub addr: Ipv6Addr,
    /// The prefix length, 8 to 64.
    pub prefix: u8,
}

impl Subnet6 {
    /// The stand-in a check renders templates with before the real prefix is picked.
    pub(crate) const SAMPLE: Subnet6 = Subnet6 { addr: Ipv6Addr::new(0xfd00, 0x6e64, 0, 0, 0, 0, 0, 0), prefix: 64 };

    /// The network address and prefix length, as routes take them.
    pub fn range(&self) -> (IpAddr, u8) {
        (self.addr.into(), self.prefix)
    }

    /// The prefix of `addr/prefix`, host bits cleared.
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Result<Subnet6> {
        if !(8..=64).contains(&prefix) {
            return Err(Error::invalid(
                "subnet6",
                format!("prefix /{prefix} must be from /8 to /64 (an IPv6 link is a /64 or shorter)"),
            ));
        }
        Ok(Subnet6 { addr: Ipv6Addr::from(u128::from(addr) & mask6(prefix)), prefix })
    }

    /// The `n`-th address of the prefix (0 is the network address).
    pub fn nth(&self, n: u32) -> Ipv6Addr {
        Ipv6Addr::from(u128::from(self.addr) + u128::from(n))
    }

    /// The host's address: `::1`.
    pub fn host(&self) -> Ipv6Addr {
        self.nth(1)
    }

    /// The address of node `index`: the ones after the host's.
    pub fn node(&self, index: usize) -> Ipv6Addr {
        self.nth(2 + index as u32)
    }

    /// Whether the prefix shares an address with `addr/prefix` (any prefix, 0 to 128).
    pub fn overlaps_range(&self, addr: Ipv6Addr, prefix: u8) -> bool {
        let mask = mask6(self.prefix.min(prefix));
        u128::from(self.addr) & mask == u128::from(addr) & mask
    }

    /// Refuses the ranges a network cannot live in: the reserved `::/8` (loopback,
    /// unspecified, IPv4-mapped), link-local and multicast.
    pub fn check_usable(&self) -> Result<()> {
        let reserved: [(Ipv6Addr, u8, &str); 3] = [
            (Ipv6Addr::UNSPECIFIED, 8, "reserved ::/8 (loopback, unspecified, IPv4-mapped)"),
            (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, "link-local (fe80::/10)"),
            (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, "multicast (ff00::/8)"),
        ];
        match reserved.iter().find(|(addr, prefix, _)| self.overlaps_range(*addr, *prefix)) {
            Some((_, _, what)) => Err(Error::invalid(
                "subnet6",
                format!(
                    "{self} is in the {what} range, which no network can use; pick a unique local /64 in \
                     fd00::/8, or leave it unset"
                ),
            )),
            None => Ok(()),
        }
    }
}

/// The netmask of an IPv6 prefix length (0 to 128).
fn mask6(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl std::fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl std::str::FromStr for Subnet6 {
    type Err = Error;
    fn from_str(s: &str) -> Result<Subnet6> {
        let bad = || Error::invalid("subnet6", format!("'{s}' is not an IPv6 prefix like fd00:6e64:1::/64"));
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        Subnet6::new(addr.parse().map_err(|_| bad())?, prefix.parse().map_err(|_| bad())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_math() {
        let s: Subnet = "10.200.1.7/24".parse().unwrap();
        assert_eq!(s.to_string(), "10.200.1.0/24");
        assert_eq!(s.host(), Ipv4Addr::new(10, 200, 1, 1));
        assert_eq!(s.node(0), Ipv4Addr::new(10, 200, 1, 2));
        assert_eq!(s.capacity(), 253);
        assert!(s.overlaps(&"10.200.0.0/16".parse().unwrap()));
        assert!(!s.overlaps(&"10.200.2.0/24".parse().unwrap()));
        assert!("10.0.0.0".parse::<Subnet>().is_err());
        assert!("10.0.0.0/31".parse::<Subnet>().is_err());
    }

    #[test]
    fn subnet6_math() {
        let s: Subnet6 = "fd00:6e64:1:2:3::7/64".parse().unwrap();
        assert_eq!(s.to_string(), "fd00:6e64:1:2::/64");
        assert_eq!(s.host().to_string(), "fd00:6e64:1:2::1");
        assert_eq!(s.node(0).to_string(), "fd00:6e64:1:2::2");
        assert_eq!(s.node(9999).to_string(), "fd00:6e64:1:2::2711");
        assert!(s.overlaps_range("fd00::".parse().unwrap(), 8));
        assert!(s.overlaps_range("fd00:6e64:1:2::5".parse().unwrap(), 128));
        assert!(!s.overlaps_range("fd00:6e64:1:3::".parse().unwrap(), 64));
        assert!("fd00::/48".parse::<Subnet6>().is_ok());
        let long = "fd00::/80".parse::<Subnet6>().unwrap_err().to_string();
        assert!(long.contains("/80 must be from /8 to /64"), "{long}");
        assert!("10.0.0.0/24".parse::<Subnet6>().is_err());
        assert!("fe80::/64".parse::<Subnet6>().unwrap().check_usable().is_err());
        assert!("ff02::/64".parse::<Subnet6>().unwrap().check_usable().is_err());
        assert!("fd00:1::/64".parse::<Subnet6>().unwrap().check_usable().is_ok());
    }
}

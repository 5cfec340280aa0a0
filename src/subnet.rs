//! IPv4 subnets: the network's addresses, the host's and each node's.

use std::net::Ipv4Addr;

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
}

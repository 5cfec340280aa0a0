//! The fabric: links, addresses, routes and neighbours that join the nodes into one network.
//!
//! Layout: a private *lab* network namespace is a router with one port per node (`n<index>`,
//! a veth whose other end is `eth0` in the node's namespace) and an uplink veth to the host's
//! namespace (`nd<id>`, holding the subnet's first address), so the host reaches every node.
//! The lab is held only by a descriptor: if the controller dies, the kernel removes the lab
//! with all its links, the uplink included.
//!
//! Routed, not bridged: a node's one neighbour is the lab ([`GATEWAY`], a link-local address
//! no interface holds, with a permanent entry for the lab's MAC address), and the lab has a
//! route and a permanent neighbour entry per node. Every MAC address is fixed, so no ARP is
//! ever sent: a network of N nodes holds 2N + 2 neighbour entries, all permanent, which the
//! kernel's shared neighbour table does not count against its limit (`gc_thresh3`), however
//! many pairs talk. A router has no port limit (a bridge holds 1023 ports).
//!
//! Dual stack is the same again for IPv6: each node's address from the network's prefix
//! (without duplicate address detection, so it serves at once), [`GATEWAY6`] as the next hop,
//! permanent entries both ways, so no neighbour discovery either. The lab's ports have no
//! IPv6 address of their own. Only routed traffic crosses the lab: what a node sends to a
//! link-local address or as a non-IP frame reaches the lab and no other node, as on any link
//! that ends at a router, and multicast (a node's own reports and solicitations) stays on the
//! node's link.

mod filter;
mod shape;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteScope};
use rtnetlink::{Handle, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

pub(crate) use shape::Sender;

use crate::error::{Context, Error, Result};
use crate::ns::{self, NodeNamespaces};
use crate::runtime::{self, Io};
use crate::shaping::Qos;
use crate::subnet::{Subnet, Subnet6};

/// Fixed interface indexes in the lab and node namespaces (indexes are per namespace):
/// they save a lookup per link.
const PORT_INDEX_BASE: u32 = 4;
const NODE_ETH_INDEX: u32 = 2;
const LOOPBACK_INDEX: u32 = 1;
/// The most nodes a network has: the largest size tested (`tests/scale.rs`).
pub(crate) const MAX_NODES: usize = 10_000;
/// The link group of node ports in the lab: one request deletes them all.
const PORT_GROUP: u32 = 1;

/// The next hop of every node and of the host: an address no interface holds (link-local, so
/// it cannot clash with a routed one), known only by its permanent neighbour entry.
pub(crate) const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
/// The same for IPv6: an address no interface holds (the lab's ports have none).
pub(crate) const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
/// The MAC address of every lab port and of the lab's end of the uplink (each is a link of its
/// own, so they need not differ). Locally administered, as are the others.
const LAB_MAC: [u8; 6] = [0x02, 0x6e, 0x64, 0x00, 0x00, 0x01];

/// The lab's port to node `index`: partitions match on it.
fn port_name(index: usize) -> String {
    format!("n{index}")
}

/// The MAC address of node `index`'s eth0.
fn node_mac(index: usize) -> [u8; 6] {
    let [_, a, b, c] = (index as u32).to_be_bytes();
    [0x02, 0x6e, 0x64, 0x80 | a, b, c]
}

/// The MAC address of the host's end of uplink `id`, from the run id's first four hex digits.
fn host_mac(id: &str) -> [u8; 6] {
    let n = u16::from_str_radix(id.get(..4).unwrap_or("0"), 16).unwrap_or(0);
    let [a, b] = n.to_be_bytes();
    [0x02, 0x6e, 0x64, 0x7f, a, b]
}

/// The prefix of uplink names in the host namespace, followed by the run id.
pub(crate) const UPLINK_PREFIX: &str = "nd";

/// The lab router and the uplink; nodes are attached with [`Fabric::attach`].
pub(crate) struct Fabric {
    /// The network's runtime, which drives the netlink connections.
    rt: tokio::runtime::Handle,
    lab: OwnedFd,
    lab_nl: Handle,
    host_nl: Handle,
    uplink: String,
    uplink_index: u32,
    subnet: Subnet,
    subnet6: Option<Subnet6>,
    /// How many nodes the network has.
    nodes: usize,
    /// Set once netem has been seen to work.
    netem_ok: std::sync::OnceLock<()>,
    /// Set once every node's packets are tagged with its htb class (for per-sender shaping).
    sender_classes: std::sync::OnceLock<()>,
}

impl Fabric {
    /// Creates the lab namespace (a router) for `nodes` nodes, and the uplink holding the
    /// host's addresses: in `subnet`, and in `subnet6` for a dual-stack network.
    pub(crate) fn create(
        rt: tokio::runtime::Handle,
        id: &str,
        subnet: Subnet,
        subnet6: Option<Subnet6>,
        nodes: usize,
    ) -> Result<Fabric> {
        let (lab, _, socket) = ns::create_lab(subnet6.is_some())?;
        let uplink = format!("{UPLINK_PREFIX}{id}");
        let (lab_nl, host_nl) = runtime::block_on(&rt, async {
            let (conn, host, _) = rtnetlink::new_connection().context(|| "opening a netlink socket")?;
            tokio::spawn(conn);
            Ok::<_, Error>((ns::into_handle(socket), host))
        })?;
        let mut fabric = Fabric {
            rt,
            lab,
            lab_nl,
            host_nl,
            uplink,
            uplink_index: 0,
            subnet,
            subnet6,
            nodes,
            netem_ok: std::sync::OnceLock::new(),
            sender_classes: std::sync::OnceLock::new(),
        };
        fabric.uplink_index = runtime::block_on(&fabric.rt, fabric.build_uplink(id))?;
        Ok(fabric)
    }

    /// The uplink: `nd<id>` with the host's address, routing the subnet to the lab.
    async fn build_uplink(&self, id: &str) -> Result<u32> {
        let mac = host_mac(id);
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name("uplink")
            .address(LAB_MAC.to_vec())
            .setns_by_fd(self.lab.as_raw_fd())
            .build();
        let veth = veth(&self.uplink, peer).address(mac.to_vec()).build();
        self.host_nl
            .link()
            .add(veth)
            .execute()
            .await
            .map_err(|e| link_error(&format!("creating uplink {}", self.uplink), "veth", e))?;
        let set = LinkUnspec::new_with_name(&self.uplink).alias(format!("netdriver:{id}")).up().build();
        self.host_nl.link().set(set).execute().await.map_err(nl(format!("bringing up {}", self.uplink)))?;
        let index = link_index(&self.host_nl, &self.uplink).await?;
        let host = self.subnet.host();
        let what = format!("routing {} through {}", self.subnet, self.uplink);
        join_next_hop(&self.host_nl, index, host.into(), self.subnet.range()).await.map_err(nl(what))?;
        if let Some(s6) = self.subnet6 {
            let what = format!("routing {s6} through {}", self.uplink);
            join_next_hop(&self.host_nl, index, s6.host().into(), s6.range()).await.map_err(nl(what))?;
        }

        // The kernel keeps the index asked for a veth's peer only when the first end's is
        // given too, which the host's namespace cannot promise: look it up.
        let lab = &self.lab_nl;
        let lab_end = link_index(lab, "uplink").await?;
        let up = LinkUnspec::new_with_index(lab_end).up().build();
        lab.link().set(up).execute().await.map_err(nl("bringing up the lab's uplink"))?;
        route_to(lab, lab_end, host.into(), mac).await.map_err(nl("routing the host's address in the lab"))?;
        if let Some(s6) = self.subnet6 {
            route_to(lab, lab_end, s6.host().into(), mac)
                .await
                .map_err(nl("routing the host's IPv6 address in the lab"))?;
        }
        Ok(index)
    }

    /// Joins node `index`: port `n<index>` in the lab, `eth0` with the node's addresses in
    /// the node, the routes and neighbour entries both ways. Without IPv6, eth0 gets no
    /// link-local address, so it sends no IPv6 at all. The requests of several nodes may be in
    /// flight at once (each node's go in order on its own socket).
    pub(crate) async fn attach(&self, index: usize, ns: &NodeNamespaces, socket: netlink_sys::Socket) -> Result<()> {
        let ip = self.subnet.node(index);
        let ip6 = self.subnet6.map(|s| s.node(index));
        let port_index = PORT_INDEX_BASE + index as u32;
        let mac = node_mac(index);
        let node_net = ns.net()?;
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name("eth0")
            .index(NODE_ETH_INDEX)
            .address(mac.to_vec())
            .setns_by_fd(node_net.as_raw_fd())
            .build();
        let port = veth(&port_name(index), peer)
            .index(port_index)
            .address(LAB_MAC.to_vec())
            .link_group(PORT_GROUP)
            .up()
            .build();
        let lab = &self.lab_nl;
        lab.link()
            .add(port)
            .execute()
            .await
            .map_err(|e| link_error(&format!("creating veth {}", port_name(index)), "veth", e))?;
        let node_nl = ns::into_handle(socket);
        let node_side = async {
            if ip6.is_none() {
                // Before eth0 goes up, or it gets a link-local address on the way.
                let mode = AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)]);
                let quiet = LinkUnspec::new_with_index(NODE_ETH_INDEX)
                    .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![mode]))
                    .build();
                node_nl.link().set(quiet).execute().await?;
            }
            let [eth0, lo] = [NODE_ETH_INDEX, LOOPBACK_INDEX].map(|i| LinkUnspec::new_with_index(i).up().build());
            futures::try_join!(node_nl.link().set(eth0).execute(), node_nl.link().set(lo).execute())?;
            join_next_hop(&node_nl, NODE_ETH_INDEX, ip.into(), self.subnet.range()).await?;
            match (ip6, self.subnet6) {
                (Some(ip6), Some(s6)) => join_next_hop(&node_nl, NODE_ETH_INDEX, ip6.into(), s6.range()).await,
                _ => Ok(()),
            }
        };
        let lab_side = async {
            route_to(lab, port_index, ip.into(), mac).await?;
            match ip6 {
                Some(ip6) => route_to(lab, port_index, ip6.into(), mac).await,
                None => Ok(()),
            }
        };
        futures::try_join!(node_side, lab_side).map(|_| ()).map_err(nl(format!("joining node {index} ({ip})")))
    }

    /// Removes every link the fabric made. The namespaces go when their last holder does.
    pub(crate) fn destroy(self) -> Result<()> {
        runtime::block_on(&self.rt, async {
            let mut by_group = LinkMessage::default();
            by_group.attributes.push(LinkAttribute::Group(PORT_GROUP));
            // No port to delete (a bring-up that failed before the first node) is no error.
            match self.lab_nl.link().del_with_message(by_group).execute().await {
                Err(e) if errno(&e) == Some(libc::ENODEV) => {}
                r => r.map_err(nl("deleting node links"))?,
            }
            match self.host_nl.link().del(self.uplink_index).execute().await {
                Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(()),
                r => r.map_err(nl(format!("deleting {}", self.uplink))),
            }
        })
    }

    /// Drops what the first nodes (by index) of each cut send to the second ones, and only
    /// that, replacing earlier cuts.
    pub(crate) fn set_cuts(&self, cuts: &[(&[usize], &[usize])]) -> Result<()> {
        use std::os::fd::AsFd;
        filter::apply(self.lab.as_fd(), cuts)
    }

    /// Fails with a clear error if the kernel has no netem (checked once, changing nothing).
    pub(crate) fn check_netem(&self) -> Result<()> {
        if self.netem_ok.get().is_none() {
            runtime::block_on(&self.rt, shape::probe_netem(&self.lab_nl))?;
            let _ = self.netem_ok.set(());
        }
        Ok(())
    }

    /// Replaces the shaping of traffic to node `index`: `all` for every sender, or the
    /// sender's own setting.
    pub(crate) fn shape_receive(&self, index: usize, all: Option<&Qos>, senders: &[Sender<'_>]) -> Result<()> {
        if !senders.is_empty() && self.sender_classes.get().is_none() {
            use std::os::fd::AsFd;
            filter::tag_senders(self.lab.as_fd(), self.nodes)?;
            let _ = self.sender_classes.set(());
        }
        runtime::block_on(&self.rt, shape::shape_receive(&self.lab_nl, index, all, senders))
    }

    /// Replaces the shaping of traffic from node `index`.
    pub(crate) fn shape_send(&self, index: usize, qos: Option<&Qos>) -> Result<()> {
        runtime::block_on(&self.rt, shape::shape_send(&self.lab_nl, index, qos))
    }
}

/// An address range the host routes somewhere: a route's destination and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Taken {
    pub(crate) addr: IpAddr,
    pub(crate) prefix: u8,
}

/// The ranges of the host's IPv4 and IPv6 routes in every table (not only the main one),
/// whatever their prefix; default routes left out.
pub(crate) fn host_routes() -> Result<Vec<Taken>> {
    Io::new()?.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection().context(|| "opening a netlink socket")?;
        tokio::spawn(conn);
        let mut taken = Vec::new();
        let families = [RouteMessageBuilder::<Ipv4Addr>::new().build(), RouteMessageBuilder::<Ipv6Addr>::new().build()];
        for family in families {
            let mut routes = handle.route().get(family).execute();
            while let Some(route) = routes.try_next().await.map_err(nl("listing the host's routes"))? {
                let prefix = route.header.destination_prefix_length;
                let dest = route.attributes.iter().find_map(|a| match a {
                    RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(IpAddr::from(*ip)),
                    RouteAttribute::Destination(RouteAddress::Inet6(ip)) => Some(IpAddr::from(*ip)),
                    _ => None,
                });
                if let (Some(addr), true) = (dest, prefix > 0) {
                    taken.push(Taken { addr, prefix });
                }
            }
        }
        Ok(taken)
    })
}

/// Deletes the uplink `name` of a dead run `id`, if it is still there and carries the run's
/// alias. Returns whether it deleted it.
pub(crate) fn remove_stale_uplink(name: &str, id: &str) -> Result<bool> {
    Io::new()?.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection().context(|| "opening a netlink socket")?;
        tokio::spawn(conn);
        let mut links = handle.link().get().match_name(name.to_string()).execute();
        let link = match links.try_next().await {
            Ok(Some(link)) => link,
            Ok(None) => return Ok(false),
            Err(e) if errno(&e) == Some(libc::ENODEV) => return Ok(false),
            Err(e) => return Err(nl(format!("looking up {name}"))(e)),
        };
        let ours = link
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::IfAlias(alias) if *alias == format!("netdriver:{id}")));
        if !ours {
            return Ok(false);
        }
        handle.link().del(link.header.index).execute().await.map_err(nl(format!("deleting {name}")))?;
        Ok(true)
    })
}

impl std::fmt::Debug for Fabric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fabric").field("uplink", &self.uplink).finish()
    }
}

/// Gives interface `index` the address `ip` in `range` (network address and prefix length)
/// without the range's on-link route (nor duplicate address detection, for IPv6), and routes
/// the range through [`GATEWAY`] or [`GATEWAY6`], whose permanent entry is the lab's MAC
/// address.
async fn join_next_hop(
    nl: &Handle,
    index: u32,
    ip: IpAddr,
    (net, prefix): (IpAddr, u8),
) -> std::result::Result<(), rtnetlink::Error> {
    let mut address = nl.address().add(index, ip, prefix);
    let flags =
        if ip.is_ipv4() { AddressFlags::Noprefixroute } else { AddressFlags::Noprefixroute | AddressFlags::Nodad };
    address.message_mut().attributes.push(AddressAttribute::Flags(flags));
    address.execute().await?;
    let gateway = if ip.is_ipv4() { IpAddr::from(GATEWAY) } else { IpAddr::from(GATEWAY6) };
    nl.neighbours().add(index, gateway).link_layer_address(&LAB_MAC).execute().await?;
    let route = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(net, prefix)
        .and_then(|r| r.gateway(gateway))
        .expect("the range and the gateway are of the address's family")
        .output_interface(index)
        .onlink()
        .build();
    nl.route().add(route).execute().await
}

/// Routes `ip` out of the lab's interface `index`, to the fixed MAC address `mac`.
async fn route_to(lab: &Handle, index: u32, ip: IpAddr, mac: [u8; 6]) -> std::result::Result<(), rtnetlink::Error> {
    lab.neighbours().add(index, ip).link_layer_address(&mac).execute().await?;
    let full = if ip.is_ipv4() { 32 } else { 128 };
    let route = RouteMessageBuilder::<IpAddr>::new()
        .destination_prefix(ip, full)
        .expect("a host route is valid")
        .output_interface(index)
        .scope(RouteScope::Link)
        .build();
    lab.route().add(route).execute().await
}

fn veth(name: &str, peer: LinkMessage) -> LinkMessageBuilder<LinkVeth> {
    LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(name.to_string())
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
}

async fn link_index(handle: &Handle, name: &str) -> Result<u32> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await.map_err(nl(format!("looking up {name}")))? {
        Some(link) => Ok(link.header.index),
        None => Err(Error::State(format!("link {name} vanished right after it was created"))),
    }
}

/// The errno of a netlink error answer.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

fn nl(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Error {
    let op = op.into();
    move |source| Error::Netlink { op, source }
}

/// A link creation error, naming the missing kernel feature when the kind is unknown.
fn link_error(op: &str, kind: &str, source: rtnetlink::Error) -> Error {
    match errno(&source) {
        Some(libc::EOPNOTSUPP) => Error::KernelFeature {
            feature: format!("{kind} links"),
            fix: format!("load the module with `modprobe {kind}` or use a kernel built with it"),
        },
        _ => Error::Netlink { op: op.to_string(), source },
    }
}

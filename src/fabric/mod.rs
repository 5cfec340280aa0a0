//! The fabric: links and addresses that join the nodes into one network.
//!
//! Layout: a private *lab* network namespace holds the bridge `br0` and one veth end per node
//! (`n<index>`); the other end is `eth0` in the node's namespace. A single uplink veth joins
//! the lab to the host's namespace (`nd<id>`, holding the subnet's first address), so the
//! host reaches every node. The lab is held only by a descriptor: if the controller dies,
//! the kernel removes the lab with all its links, the uplink included.

mod filter;
mod shape;

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use futures::TryStreamExt;
use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute};
use rtnetlink::{Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder};

pub(crate) use shape::Sender;

use crate::error::{Context, Error, Result};
use crate::ns::{self, NodeNamespaces};
use crate::runtime::{self, Io};
use crate::shaping::Qos;
use crate::subnet::Subnet;

/// Fixed interface indexes in the lab and node namespaces (indexes are per namespace):
/// they save a lookup per link.
const BRIDGE_INDEX: u32 = 2;
const UPLINK_INDEX: u32 = 3;
const PORT_INDEX_BASE: u32 = 4;
const NODE_ETH_INDEX: u32 = 2;
const LOOPBACK_INDEX: u32 = 1;
/// The bridge's address: locally administered, so it cannot clash with a real interface.
const BRIDGE_MAC: [u8; 6] = [0x02, 0x6e, 0x64, 0x00, 0x00, 0x01];
/// The link group of node ports in the lab: one request deletes them all.
const PORT_GROUP: u32 = 1;

/// The prefix of uplink names in the host namespace, followed by the run id.
pub(crate) const UPLINK_PREFIX: &str = "nd";

/// The lab, its bridge and the uplink; nodes are attached with [`Fabric::attach`].
pub(crate) struct Fabric {
    /// The network's runtime, which drives the netlink connections.
    rt: tokio::runtime::Handle,
    lab: OwnedFd,
    lab_nl: Handle,
    host_nl: Handle,
    uplink: String,
    uplink_index: u32,
    subnet: Subnet,
    /// Set once netem has been seen to work.
    netem_ok: std::sync::OnceLock<()>,
}

impl Fabric {
    /// Creates the lab namespace, its bridge, and the uplink holding the host's address.
    pub(crate) fn create(rt: tokio::runtime::Handle, id: &str, subnet: Subnet, ipv6: bool) -> Result<Fabric> {
        let (lab, _, socket) = ns::create_net(ipv6)?;
        let uplink = format!("{UPLINK_PREFIX}{id}");
        let (lab_nl, host_nl) = runtime::block_on(&rt, async {
            let (conn, host, _) = rtnetlink::new_connection().context(|| "opening a netlink socket")?;
            tokio::spawn(conn);
            Ok::<_, Error>((ns::into_handle(socket), host))
        })?;
        let mut fabric =
            Fabric { rt, lab, lab_nl, host_nl, uplink, uplink_index: 0, subnet, netem_ok: std::sync::OnceLock::new() };
        fabric.uplink_index = runtime::block_on(&fabric.rt, fabric.build_lab(id))?;
        Ok(fabric)
    }

    async fn build_lab(&self, id: &str) -> Result<u32> {
        // Every port added walks all ports for the bridge id, the MTU and multicast snooping:
        // a fixed address and MTU, and no snooping (the nodes send no multicast), spare most
        // of that quadratic work.
        let bridge = LinkBridge::new("br0")
            .mcast_snooping(false)
            .index(BRIDGE_INDEX)
            .address(BRIDGE_MAC.to_vec())
            .mtu(1500)
            .up()
            .build();
        self.lab_nl.link().add(bridge).execute().await.map_err(|e| link_error("creating bridge br0", "bridge", e))?;

        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name("uplink")
            .index(UPLINK_INDEX)
            .setns_by_fd(self.lab.as_raw_fd())
            .build();
        let veth = veth(&self.uplink, peer).build();
        self.host_nl
            .link()
            .add(veth)
            .execute()
            .await
            .map_err(|e| link_error(&format!("creating uplink {}", self.uplink), "veth", e))?;
        let set = LinkUnspec::new_with_name(&self.uplink).alias(format!("netdriver:{id}")).up().build();
        self.host_nl.link().set(set).execute().await.map_err(nl(format!("bringing up {}", self.uplink)))?;
        let index = link_index(&self.host_nl, &self.uplink).await?;
        self.host_nl
            .address()
            .add(index, self.subnet.host().into(), self.subnet.prefix)
            .execute()
            .await
            .map_err(nl(format!("adding {}/{} to {}", self.subnet.host(), self.subnet.prefix, self.uplink)))?;
        let port = LinkUnspec::new_with_index(UPLINK_INDEX).controller(BRIDGE_INDEX).up().build();
        self.lab_nl.link().set(port).execute().await.map_err(nl("attaching the uplink to br0"))?;
        Ok(index)
    }

    /// Joins node `index` to the bridge: `n<index>` in the lab, `eth0` with `ip` in the node.
    /// Without `ipv6`, eth0 gets no link-local address, so it sends no IPv6 at all (duplicate
    /// address detection and multicast listener reports would flood the bridge at scale).
    pub(crate) fn attach(
        &self,
        index: usize,
        ns: &NodeNamespaces,
        socket: netlink_sys::Socket,
        ip: Ipv4Addr,
        ipv6: bool,
    ) -> Result<()> {
        runtime::block_on(&self.rt, async {
            let node_nl = ns::into_handle(socket);
            let peer = LinkMessageBuilder::<LinkUnspec>::new()
                .name("eth0")
                .index(NODE_ETH_INDEX)
                .setns_by_fd(ns.net.as_raw_fd())
                .build();
            let port = veth(&format!("n{index}"), peer)
                .index(PORT_INDEX_BASE + index as u32)
                .controller(BRIDGE_INDEX)
                .link_group(PORT_GROUP)
                .up()
                .build();
            self.lab_nl
                .link()
                .add(port)
                .execute()
                .await
                .map_err(|e| link_error(&format!("creating veth n{index}"), "veth", e))?;
            if !ipv6 {
                let mode = AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)]);
                let quiet = LinkUnspec::new_with_index(NODE_ETH_INDEX)
                    .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![mode]))
                    .build();
                node_nl.link().set(quiet).execute().await.map_err(nl(format!("turning IPv6 off on node {index}")))?;
            }
            for i in [LOOPBACK_INDEX, NODE_ETH_INDEX] {
                let up = LinkUnspec::new_with_index(i).up().build();
                node_nl.link().set(up).execute().await.map_err(nl(format!("bringing up links of node {index}")))?;
            }
            node_nl
                .address()
                .add(NODE_ETH_INDEX, ip.into(), self.subnet.prefix)
                .execute()
                .await
                .map_err(nl(format!("adding {ip} to node {index}")))
        })
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

    /// Drops traffic from the first address of each pair to the second, and only that.
    pub(crate) fn set_cut(&self, cut: &[(Ipv4Addr, Ipv4Addr)]) -> Result<()> {
        use std::os::fd::AsFd;
        filter::apply(self.lab.as_fd(), cut)
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
    pub(crate) addr: Ipv4Addr,
    pub(crate) prefix: u8,
}

/// The ranges of the host's IPv4 routes in every table (not only the main one), whatever
/// their prefix; default routes left out.
pub(crate) fn host_routes() -> Result<Vec<Taken>> {
    Io::new()?.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection().context(|| "opening a netlink socket")?;
        tokio::spawn(conn);
        let mut routes = handle.route().get(RouteMessageBuilder::<Ipv4Addr>::new().build()).execute();
        let mut taken = Vec::new();
        while let Some(route) = routes.try_next().await.map_err(nl("listing the host's routes"))? {
            let prefix = route.header.destination_prefix_length;
            let dest = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                _ => None,
            });
            if let (Some(addr), true) = (dest, prefix > 0) {
                taken.push(Taken { addr, prefix });
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

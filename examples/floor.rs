//! Benchmark baseline: the kernel's own floor for a network of N nodes. Only what the kernel
//! must do, on one thread, with netlink requests sent in batches and no waiting between them:
//! a network namespace per node held by a descriptor, a veth created in the lab with its peer
//! in the node, attached to a bridge (1000 ports a bridge), up, IPv6 off, one address. No
//! directories, mount or UTS namespaces or processes. With `--routed`, netdriver's own
//! topology instead of the bridge: the lab routes, with a route and a permanent neighbour entry
//! per node, and each node a route and a permanent entry for its next hop.
//!
//! `floor --nodes N [--routed]`; the last line is `floor N=<n> up=<s> down=<s>` (read by
//! scripts/bench).

use std::fs::File;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use netlink_packet_route::link::{AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoVeth};
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};

type Error = Box<dyn std::error::Error>;

const PORTS_PER_BRIDGE: usize = 1000;
const BATCH: usize = 64;
const GROUP: u32 = 1;

/// A netlink socket of the calling thread's network namespace, with requests in flight.
struct Netlink {
    socket: netlink_sys::Socket,
    sequence: u32,
    in_flight: usize,
}

impl Netlink {
    fn new() -> Result<Netlink, Error> {
        let mut socket = netlink_sys::Socket::new(netlink_sys::protocols::NETLINK_ROUTE)?;
        socket.bind_auto()?;
        Ok(Netlink { socket, sequence: 0, in_flight: 0 })
    }

    /// Sends a request without waiting for its answer.
    fn send(&mut self, message: RouteNetlinkMessage, create: bool) -> Result<(), Error> {
        let mut message = NetlinkMessage::from(message);
        message.header.flags = NLM_F_REQUEST | NLM_F_ACK | if create { NLM_F_CREATE | NLM_F_EXCL } else { 0 };
        self.sequence += 1;
        message.header.sequence_number = self.sequence;
        message.finalize();
        let mut buffer = vec![0; message.header.length as usize];
        message.serialize(&mut buffer);
        self.socket.send(&buffer, 0)?;
        self.in_flight += 1;
        Ok(())
    }

    /// Reads the answers of every request in flight; fails on the first error.
    fn settle(&mut self) -> Result<(), Error> {
        let mut buffer = Vec::with_capacity(1 << 16);
        while self.in_flight > 0 {
            buffer.clear();
            let len = self.socket.recv(&mut buffer, 0)?;
            let mut at = 0;
            while at < len {
                let message = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buffer[at..len])?;
                at += message.header.length as usize;
                if let NetlinkPayload::Error(e) = message.payload {
                    self.in_flight -= 1;
                    if let Some(code) = e.code {
                        return Err(
                            format!("netlink request {}: {}", message.header.sequence_number, -code.get()).into()
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

fn unshare_net() -> Result<OwnedFd, Error> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
    Ok(File::open("/proc/thread-self/ns/net")?.into())
}

const MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 1];
const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);

/// A permanent neighbour entry: `ip` at `mac` on link `index`.
fn neighbour(index: u32, ip: Ipv4Addr, mac: [u8; 6]) -> RouteNetlinkMessage {
    use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState};
    let mut message = NeighbourMessage::default();
    message.header.family = netlink_packet_route::AddressFamily::Inet;
    message.header.ifindex = index;
    message.header.state = NeighbourState::Permanent;
    message.attributes.push(NeighbourAttribute::Destination(NeighbourAddress::Inet(ip)));
    message.attributes.push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    RouteNetlinkMessage::NewNeighbour(message)
}

/// A route to `ip`/`prefix` out of link `index`, through `via` if given.
fn route(index: u32, ip: Ipv4Addr, prefix: u8, via: Option<Ipv4Addr>) -> RouteNetlinkMessage {
    let mut route =
        rtnetlink::RouteMessageBuilder::<Ipv4Addr>::new().destination_prefix(ip, prefix).output_interface(index);
    route = match via {
        Some(gateway) => route.gateway(gateway).onlink(),
        None => route.scope(netlink_packet_route::route::RouteScope::Link),
    };
    RouteNetlinkMessage::NewRoute(route.build())
}

fn up(n: usize, routed: bool) -> Result<(OwnedFd, Netlink, Vec<OwnedFd>), Error> {
    let lab_fd = unshare_net()?;
    let mut lab = Netlink::new()?;
    let bridges = if routed { 0 } else { n.div_ceil(PORTS_PER_BRIDGE) };
    for b in 0..bridges {
        let bridge = LinkBridge::new(&format!("br{b}")).index(2 + b as u32).mcast_snooping(false).up().build();
        lab.send(RouteNetlinkMessage::NewLink(bridge), true)?;
    }
    lab.settle()?;
    let port_base = 2 + bridges as u32;
    let mut nodes = Vec::with_capacity(n);
    for first in (0..n).step_by(BATCH) {
        let batch = first..n.min(first + BATCH);
        let mut sockets = Vec::with_capacity(BATCH);
        for i in batch.clone() {
            nodes.push(unshare_net()?);
            sockets.push(Netlink::new()?);
            let peer =
                LinkMessageBuilder::<LinkUnspec>::new().name("eth0").index(2).setns_by_fd(nodes[i].as_raw_fd()).build();
            let mut port = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
                .name(format!("n{i}"))
                .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
                .index(port_base + i as u32)
                .link_group(GROUP)
                .up();
            if !routed {
                port = port.controller(2 + (i / PORTS_PER_BRIDGE) as u32);
            }
            lab.send(RouteNetlinkMessage::NewLink(port.build()), true)?;
            if routed {
                lab.send(neighbour(port_base + i as u32, node_ip(i), MAC), true)?;
                lab.send(route(port_base + i as u32, node_ip(i), 32, None), true)?;
            }
        }
        lab.settle()?;
        for (node, i) in sockets.iter_mut().zip(batch) {
            let mode = AfSpecUnspec::Inet6(vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)]);
            let quiet = LinkUnspec::new_with_index(2).append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![mode]));
            node.send(RouteNetlinkMessage::SetLink(quiet.build()), false)?;
            for index in [1, 2] {
                node.send(RouteNetlinkMessage::SetLink(LinkUnspec::new_with_index(index).up().build()), false)?;
            }
            let mut address = netlink_packet_route::address::AddressMessage::default();
            address.header.family = netlink_packet_route::AddressFamily::Inet;
            address.header.prefix_len = 16;
            address.header.index = 2;
            let ip = node_ip(i);
            address.attributes.push(netlink_packet_route::address::AddressAttribute::Local(ip.into()));
            address.attributes.push(netlink_packet_route::address::AddressAttribute::Address(ip.into()));
            if routed {
                let flags = netlink_packet_route::address::AddressFlags::Noprefixroute;
                address.attributes.push(netlink_packet_route::address::AddressAttribute::Flags(flags));
            }
            node.send(RouteNetlinkMessage::NewAddress(address), true)?;
            if routed {
                node.send(neighbour(2, GATEWAY, MAC), true)?;
                node.send(route(2, Ipv4Addr::new(10, 99, 0, 0), 16, Some(GATEWAY)), true)?;
            }
        }
        for node in &mut sockets {
            node.settle()?;
        }
    }
    Ok((lab_fd, lab, nodes))
}

fn node_ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 99, 0, 2)) + i as u32)
}

fn down(lab_fd: OwnedFd, mut lab: Netlink, nodes: Vec<OwnedFd>) -> Result<(), Error> {
    let mut by_group = LinkMessage::default();
    by_group.attributes.push(LinkAttribute::Group(GROUP));
    lab.send(RouteNetlinkMessage::DelLink(by_group), false)?;
    lab.settle()?;
    drop(nodes);
    drop(lab);
    drop(lab_fd);
    Ok(())
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = match args.iter().position(|a| a == "--nodes") {
        Some(i) => args.get(i + 1).ok_or("--nodes needs a number")?.parse()?,
        None => 10,
    };
    let routed = args.iter().any(|a| a == "--routed");
    // A descriptor per namespace: raise the soft limit as far as the hard one allows.
    let (_, hard) = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)?;
    nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, hard, hard)?;
    // On a thread of its own: it leaves the thread in the last node's namespace.
    std::thread::spawn(move || -> Result<(), String> {
        let t = Instant::now();
        let (lab_fd, lab, nodes) = up(n, routed).map_err(|e| e.to_string())?;
        let up = t.elapsed().as_secs_f64();
        let t = Instant::now();
        down(lab_fd, lab, nodes).map_err(|e| e.to_string())?;
        let down = t.elapsed().as_secs_f64();
        println!("floor N={n} up={up:.3} down={down:.3}");
        Ok(())
    })
    .join()
    .map_err(|_| "the floor's thread panicked")??;
    Ok(())
}

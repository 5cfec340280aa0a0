//! Link shaping in the lab: the qdiscs on the node ports that make [`Qos`] happen.
//!
//! All shaping sits on the lab side, never in a node, so a node's own stack sees no local
//! drops (netem loss on a sender's own interface would be reported to its TCP):
//! - traffic *to* node b: port `n<b>`'s egress. With only a node-wide setting, a netem root;
//!   with per-sender settings, an htb root whose default class carries the node-wide netem
//!   and one class per shaped sender its own. htb picks a sender's class from the packet's
//!   priority, which the lab sets from the port the packet came in by (see `filter`): IPv4,
//!   IPv6 and anything else the lab routes are shaped alike.
//! - traffic *from* node a: port `n<a>`'s ingress, redirected (mirred) to an ifb device
//!   `i<a>` whose egress carries the netem.
//!
//! Every slot is a netem, with a tbf below it when a rate is set. A change rebuilds the
//! port's tree: a netem distribution table cannot be taken back by a `change`.

use futures::StreamExt;
use netlink_packet_core::DefaultNla;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::{Handle, LinkIfb};

use super::{errno, nl, PORT_INDEX_BASE};
use crate::error::{Error, Result};
use crate::shaping::{htb, netem, psched, tbf, Qos, Rate};

/// Interface indexes of the ifb devices in the lab, after the ports.
const IFB_INDEX_BASE: u32 = PORT_INDEX_BASE + super::MAX_NODES as u32;
const TCA_OPTIONS: u16 = 2;
/// Filter protocols, in network byte order as the kernel reads them (rtnetlink passes the
/// value through as is).
const ETH_P_ALL: u16 = 0x0003u16.to_be();
/// What htb classes may carry: effectively unlimited (rates come from tbf).
const UNLIMITED: Rate = Rate::from_bits_per_sec(100_000_000_000);
/// How long tbf may queue at its rate before it drops.
const TBF_LATENCY: std::time::Duration = std::time::Duration::from_millis(200);

/// Who sends what a per-sender slot shapes.
pub(crate) struct Sender<'a> {
    pub(crate) index: usize,
    pub(crate) qos: &'a Qos,
}

/// The htb class (`1:<2 + index>`) of sender `index` at every receiver's port: the priority
/// the lab gives its packets.
pub(super) fn sender_class(index: usize) -> u32 {
    0x10000 | (2 + index as u32)
}

/// Fails with a clear error if the kernel has no netem, changing nothing on the nodes.
pub(crate) async fn probe_netem(lab: &Handle) -> Result<()> {
    // The lab's loopback carries no traffic: try a netem there and remove it.
    let probe =
        qdisc(1, TcHandle::ROOT, TcHandle::from(0x10000), "netem", netem::netem_options(&Qos::default(), ticks()?));
    match send(lab, RouteNetlinkMessage::NewQueueDiscipline(probe), NLM_F_CREATE | NLM_F_EXCL).await {
        Ok(()) => {}
        Err(e) if errno(&e) == Some(libc::ENOENT) => {
            return Err(Error::KernelFeature {
                feature: "the netem qdisc (sch_netem)".into(),
                fix: "load it with `modprobe sch_netem` (Ubuntu: install linux-modules-extra-$(uname -r)), or use a \
                      distribution kernel that ships it; partitions and clocks work without it"
                    .into(),
            })
        }
        Err(e) => return Err(nl("trying a netem qdisc")(e)),
    }
    delete_root(lab, 1).await
}

/// Replaces the shaping of traffic to node `index`.
pub(crate) async fn shape_receive(lab: &Handle, index: usize, all: Option<&Qos>, senders: &[Sender<'_>]) -> Result<()> {
    let port = PORT_INDEX_BASE + index as u32;
    delete_root(lab, port).await?;
    let ticks = ticks()?;
    if senders.is_empty() {
        return match all {
            Some(q) => slot(lab, port, TcHandle::ROOT, 0x10, q, ticks).await,
            None => Ok(()),
        };
    }
    let root = qdisc(port, TcHandle::ROOT, TcHandle::from(0x10000), "htb", htb::htb_qdisc_options(1));
    add(lab, RouteNetlinkMessage::NewQueueDiscipline(root), "adding an htb root").await?;
    let class_of = |minor: u32| TcHandle::from(0x10000 | minor);
    add_class(lab, port, class_of(1), ticks).await?;
    if let Some(q) = all {
        slot(lab, port, class_of(1), 0x10, q, ticks).await?;
    }
    for s in senders {
        let class = TcHandle::from(sender_class(s.index));
        add_class(lab, port, class, ticks).await?;
        slot(lab, port, class, 0x1000 + s.index as u16 * 2, s.qos, ticks).await?;
    }
    Ok(())
}

/// Replaces the shaping of traffic from node `index` (`None`: none).
pub(crate) async fn shape_send(lab: &Handle, index: usize, qos: Option<&Qos>) -> Result<()> {
    let port = PORT_INDEX_BASE + index as u32;
    let ifb = IFB_INDEX_BASE + index as u32;
    let mut ingress = TcMessage::with_index(port as i32);
    ingress.header.parent = TcHandle::INGRESS;
    let removed = send(lab, RouteNetlinkMessage::DelQueueDiscipline(ingress), 0).await;
    ignore_missing(removed).map_err(nl("removing an ingress qdisc"))?;
    ignore_missing(lab.link().del(ifb).execute().await).map_err(nl("removing an ifb device"))?;
    let Some(q) = qos else { return Ok(()) };
    let device = LinkIfb::new(&format!("i{index}")).index(ifb).link_group(super::PORT_GROUP).up().build();
    lab.link().add(device).execute().await.map_err(|e| match errno(&e) {
        Some(libc::EOPNOTSUPP) => {
            Error::KernelFeature { feature: "ifb devices".into(), fix: "load it with `modprobe ifb`".into() }
        }
        _ => nl("creating an ifb device")(e),
    })?;
    slot(lab, ifb, TcHandle::ROOT, 0x10, q, ticks()?).await?;
    lab.qdisc().add(port as i32).ingress().execute().await.map_err(nl("adding an ingress qdisc"))?;
    lab.traffic_filter(port as i32)
        .add()
        .parent(0xffff_0000)
        .priority(1)
        .protocol(ETH_P_ALL)
        .redirect(ifb)
        .map_err(nl("building a redirect"))?
        .execute()
        .await
        .map_err(nl(format!("redirecting what node {index} sends")))
}

/// A netem with handle `major:` under `parent`, and a tbf below it when `q` has a rate.
async fn slot(lab: &Handle, dev: u32, parent: TcHandle, major: u16, q: &Qos, ticks: f64) -> Result<()> {
    let handle = TcHandle::from(u32::from(major) << 16);
    // netem does what tbf cannot (delay, loss, ...); the rate goes to tbf, which shapes
    // with a real token bucket. The queue must hold rate x delay either way.
    let shaped = Qos { rate: None, limit: Some(q.queue_limit()), ..*q };
    let options = netem::netem_options(&shaped, ticks);
    add(
        lab,
        RouteNetlinkMessage::NewQueueDiscipline(qdisc(dev, parent, handle, "netem", options)),
        "adding a netem qdisc",
    )
    .await?;
    if let Some(rate) = q.rate {
        let burst = tbf::tbf_burst(rate);
        let options = tbf::tbf_options(rate, burst, tbf::tbf_limit(rate, burst, TBF_LATENCY), ticks);
        let child = TcHandle::from((u32::from(major) + 1) << 16);
        let tbf = qdisc(dev, TcHandle::from(u32::from(major) << 16 | 1), child, "tbf", options);
        add(lab, RouteNetlinkMessage::NewQueueDiscipline(tbf), "adding a tbf qdisc").await?;
    }
    Ok(())
}

async fn add_class(lab: &Handle, dev: u32, handle: TcHandle, ticks: f64) -> Result<()> {
    let options = htb::htb_class_options(&htb::HtbClass::new(UNLIMITED), ticks);
    let class = qdisc(dev, TcHandle::from(0x10000), handle, "htb", options);
    add(lab, RouteNetlinkMessage::NewTrafficClass(class), "adding an htb class").await
}

async fn delete_root(lab: &Handle, dev: u32) -> Result<()> {
    let mut msg = TcMessage::with_index(dev as i32);
    msg.header.parent = TcHandle::ROOT;
    let deleted = send(lab, RouteNetlinkMessage::DelQueueDiscipline(msg), 0).await;
    ignore_missing(deleted).map_err(nl("removing a root qdisc"))
}

/// A qdisc or class message with raw `TCA_OPTIONS`.
fn qdisc(dev: u32, parent: TcHandle, handle: TcHandle, kind: &str, options: Vec<u8>) -> TcMessage {
    let mut msg = TcMessage::with_index(dev as i32);
    msg.header.parent = parent;
    msg.header.handle = handle;
    msg.attributes.push(TcAttribute::Kind(kind.to_string()));
    msg.attributes.push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, options)));
    msg
}

async fn add(lab: &Handle, msg: RouteNetlinkMessage, op: &str) -> Result<()> {
    send(lab, msg, NLM_F_CREATE | NLM_F_EXCL).await.map_err(nl(op))
}

async fn send(lab: &Handle, msg: RouteNetlinkMessage, flags: u16) -> std::result::Result<(), rtnetlink::Error> {
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    let mut answers = lab.clone().request(req)?;
    while let Some(answer) = answers.next().await {
        if let NetlinkPayload::Error(e) = answer.payload {
            if e.code.is_some() {
                return Err(rtnetlink::Error::NetlinkError(e));
            }
        }
    }
    Ok(())
}

/// Deleting what is not there is fine: ENOENT, or EINVAL for the default root qdisc.
fn ignore_missing(r: std::result::Result<(), rtnetlink::Error>) -> std::result::Result<(), rtnetlink::Error> {
    match r {
        Err(e) if matches!(errno(&e), Some(libc::ENOENT | libc::EINVAL | libc::ENODEV)) => Ok(()),
        r => r,
    }
}

fn ticks() -> Result<f64> {
    psched::psched_ticks_per_us()
}

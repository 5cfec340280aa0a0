//! The lab's nftables: partitions (which nodes' traffic the lab drops on its way to which
//! others) and the sender tags that per-sender shaping classifies by.
//!
//! One nftables table in the lab namespace (inet family, on the forward hook: every packet
//! the lab routes from node to node, IPv4 and IPv6 alike). Packets are matched by the lab's
//! ports they come in and go out by (each node has its own), not by any protocol's
//! addresses. Senders that are in the same cuts lose the same receivers: they share a chain
//! that drops what goes out to those, and a verdict map from the port a packet came in by
//! picks the chain. A partition of N nodes into k groups so takes about k·N elements, not the
//! N² of a set of pairs. A change replaces the whole table in one atomic `nft -f`
//! transaction. Nothing in the nodes changes (their neighbour entries are permanent), so a
//! healed pair talks again at once.
//!
//! Per-sender shaping needs to know, at a receiver's port, which port a packet came in by:
//! a second table sets every packet's priority to its sender's htb class (`1:<2 + index>`),
//! which htb takes as the class directly, no filter needed. It is written once, the first
//! time a sender is shaped on its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use super::port_name;
use super::shape::sender_class;
use crate::error::{Context, Error, Result};

/// The whole table for `cuts` (what the first nodes of a cut send to the second ones is
/// dropped), replacing any earlier one.
fn ruleset(cuts: &[(&[usize], &[usize])]) -> String {
    // Each sender's cuts, then the senders that have the same ones.
    let mut cuts_of: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (c, (from, _)) in cuts.iter().enumerate() {
        for &sender in *from {
            cuts_of.entry(sender).or_default().push(c);
        }
    }
    let mut senders: BTreeMap<Vec<usize>, Vec<usize>> = BTreeMap::new();
    for (sender, its_cuts) in cuts_of {
        senders.entry(its_cuts).or_default().push(sender);
    }
    let quoted = |nodes: &mut dyn Iterator<Item = usize>| -> String {
        nodes.map(|i| format!("\"{}\"", port_name(i))).collect::<Vec<_>>().join(", ")
    };
    let mut text = String::from("add table inet netdriver\ndelete table inet netdriver\ntable inet netdriver {\n");
    let mut map = Vec::new();
    for (chain, (its_cuts, group)) in senders.iter().enumerate() {
        let lost: BTreeSet<usize> = its_cuts.iter().flat_map(|&c| cuts[c].1.iter().copied()).collect();
        let _ = writeln!(text, "  chain to{chain} {{\n    oifname {{ {} }} drop\n  }}", quoted(&mut lost.into_iter()));
        map.extend(group.iter().map(|&sender| format!("\"{}\" : jump to{chain}", port_name(sender))));
    }
    text.push_str("  chain forward {\n    type filter hook forward priority 0; policy accept;\n");
    if !map.is_empty() {
        let _ = writeln!(text, "    iifname vmap {{ {} }}", map.join(", "));
    }
    text.push_str("  }\n}\n");
    text
}

/// The table that tags each of `nodes` nodes' packets with its sender's htb class.
fn sender_tags(nodes: usize) -> String {
    let map: Vec<String> = (0..nodes)
        .map(|i| {
            let class = sender_class(i);
            format!("\"{}\" : {:x}:{:x}", port_name(i), class >> 16, class & 0xffff)
        })
        .collect();
    format!(
        "table inet netdriver-senders {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    \
         meta priority set iifname map {{ {} }}\n  }}\n}}\n",
        map.join(", ")
    )
}

/// Replaces the cuts with `cuts` (what the first nodes of a cut send to the second ones is
/// dropped).
pub(crate) fn apply(lab: BorrowedFd<'_>, cuts: &[(&[usize], &[usize])]) -> Result<()> {
    nft(lab, &ruleset(cuts), "the partition rules")
}

/// Tags the packets of each of `nodes` nodes with its sender's htb class.
pub(crate) fn tag_senders(lab: BorrowedFd<'_>, nodes: usize) -> Result<()> {
    nft(lab, &sender_tags(nodes), "the sender tags")
}

/// Runs `script` through `nft -f` in the lab; `what` names it in errors.
fn nft(lab: BorrowedFd<'_>, script: &str, what: &str) -> Result<()> {
    let fd = lab.as_raw_fd();
    let mut cmd = Command::new("nft");
    cmd.args(["-f", "-"]).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped());
    // SAFETY: setns is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || match libc::setns(fd, libc::CLONE_NEWNET) {
            0 => Ok(()),
            _ => Err(std::io::Error::last_os_error()),
        });
    }
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::missing_binary("partitions", "nft"),
        _ => Error::io("running nft in the lab namespace", e),
    })?;
    child.stdin.take().expect("piped").write_all(script.as_bytes()).context(|| "writing the nft script")?;
    let out = child.wait_with_output().context(|| "waiting for nft")?;
    if out.status.success() {
        return Ok(());
    }
    let message = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if message.contains("No such file or directory") || message.contains("Operation not supported") {
        return Err(Error::KernelFeature {
            feature: "nftables (nf_tables)".into(),
            fix: "load it with `modprobe nf_tables` or use a kernel built with it".into(),
        });
    }
    Err(Error::State(format!("nft rejected {what}: {message}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_in_the_same_cuts_share_a_chain() {
        // {0, 1} | {2}, then a block 3 -> 0: 0 and 1 lose 2, 2 loses 0 and 1, 3 loses 0.
        let cuts: [(&[usize], &[usize]); 3] = [(&[0, 1], &[2]), (&[2], &[0, 1]), (&[3], &[0])];
        let text = ruleset(&cuts);
        assert!(text.contains("chain to0 {\n    oifname { \"n2\" } drop"), "{text}");
        assert!(text.contains("chain to1 {\n    oifname { \"n0\", \"n1\" } drop"), "{text}");
        assert!(text.contains("chain to2 {\n    oifname { \"n0\" } drop"), "{text}");
        let map = "iifname vmap { \"n0\" : jump to0, \"n1\" : jump to0, \"n2\" : jump to1, \"n3\" : jump to2 }";
        assert!(text.contains(map), "{text}");
        assert!(!ruleset(&[]).contains("vmap"));
    }

    #[test]
    fn senders_are_tagged_with_their_class() {
        let text = sender_tags(3);
        assert!(text.contains("meta priority set iifname map { \"n0\" : 1:2, \"n1\" : 1:3, \"n2\" : 1:4 }"), "{text}");
    }
}

//! Partitions: which node pairs the lab drops traffic between.
//!
//! One nftables table in the lab namespace (inet family, on the forward hook: every packet
//! the lab routes from node to node). The cut pairs are grouped by sender: senders that lose
//! the same receivers share a chain that drops what goes to them, and a verdict map from the
//! sender's address picks the chain. A partition of N nodes into k groups so takes about k·N
//! elements, not the N² of a set of pairs. A change replaces the whole table in one atomic
//! `nft -f` transaction. Nothing in the nodes changes (their neighbour entries are
//! permanent), so a healed pair talks again at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::error::{Context, Error, Result};

/// The whole table for `cut` (packets from the first address of a pair to the second are
/// dropped), replacing any earlier one.
fn ruleset(cut: &[(Ipv4Addr, Ipv4Addr)]) -> String {
    let mut lost: BTreeMap<Ipv4Addr, BTreeSet<Ipv4Addr>> = BTreeMap::new();
    for &(from, to) in cut {
        lost.entry(from).or_default().insert(to);
    }
    let mut chains: Vec<&BTreeSet<Ipv4Addr>> = Vec::new();
    let mut index_of: BTreeMap<&BTreeSet<Ipv4Addr>, usize> = BTreeMap::new();
    let mut chain_of = BTreeMap::new();
    for (from, to) in &lost {
        let index = *index_of.entry(to).or_insert_with(|| {
            chains.push(to);
            chains.len() - 1
        });
        chain_of.insert(*from, index);
    }
    let mut text = String::from("add table inet netdriver\ndelete table inet netdriver\ntable inet netdriver {\n");
    for (i, to) in chains.iter().enumerate() {
        let to: Vec<String> = to.iter().map(Ipv4Addr::to_string).collect();
        let _ = writeln!(text, "  chain to{i} {{\n    ip daddr {{ {} }} drop\n  }}", to.join(", "));
    }
    text.push_str("  chain forward {\n    type filter hook forward priority 0; policy accept;\n");
    if !chain_of.is_empty() {
        let map: Vec<String> = chain_of.iter().map(|(from, i)| format!("{from} : jump to{i}")).collect();
        let _ = writeln!(text, "    ip saddr vmap {{ {} }}", map.join(", "));
    }
    text.push_str("  }\n}\n");
    text
}

/// Replaces the cut pairs with `cut` (packets from the first address to the second are dropped).
pub(crate) fn apply(lab: BorrowedFd<'_>, cut: &[(Ipv4Addr, Ipv4Addr)]) -> Result<()> {
    let script = ruleset(cut);
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
    Err(Error::State(format!("nft rejected the partition rules: {message}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_that_lose_the_same_receivers_share_a_chain() {
        let ip = |n: u8| Ipv4Addr::new(10, 0, 0, n);
        // {1, 2} | {3}: 1 and 2 lose 3, 3 loses 1 and 2.
        let cut = [(ip(1), ip(3)), (ip(2), ip(3)), (ip(3), ip(1)), (ip(3), ip(2))];
        let text = ruleset(&cut);
        assert!(text.contains("chain to0 {\n    ip daddr { 10.0.0.3 } drop"), "{text}");
        assert!(text.contains("chain to1 {\n    ip daddr { 10.0.0.1, 10.0.0.2 } drop"), "{text}");
        assert!(
            text.contains("ip saddr vmap { 10.0.0.1 : jump to0, 10.0.0.2 : jump to0, 10.0.0.3 : jump to1 }"),
            "{text}"
        );
        assert!(!ruleset(&[]).contains("vmap"));
    }
}

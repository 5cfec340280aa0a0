//! Partitions: which node pairs the bridge drops traffic between.
//!
//! One nftables table in the lab namespace (bridge family, so it sees frames as the bridge
//! forwards them) holds a set of cut (source, destination) address pairs; a change replaces
//! the whole set in one atomic `nft -f` transaction. Nothing in the nodes changes, and ARP
//! still passes, so a healed pair talks again at once.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::error::{Context, Error, Result};

const RULESET: &str = "table bridge netdriver {
  set cut { type ipv4_addr . ipv4_addr; }
  chain forward {
    type filter hook forward priority 0; policy accept;
    ip saddr . ip daddr @cut drop
  }
}
";

/// Replaces the cut pairs with `cut` (packets from the first address to the second are dropped).
pub(crate) fn apply(lab: BorrowedFd<'_>, cut: &[(Ipv4Addr, Ipv4Addr)]) -> Result<()> {
    let mut script = format!("{RULESET}flush set bridge netdriver cut\n");
    if !cut.is_empty() {
        let elements: Vec<String> = cut.iter().map(|(a, b)| format!("{a} . {b}")).collect();
        let _ = writeln!(script, "add element bridge netdriver cut {{ {} }}", elements.join(", "));
    }
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
            feature: "nftables for bridges (nf_tables, nf_tables_bridge)".into(),
            fix: "load them with `modprobe nf_tables nft_chain_bridge` or use a kernel built with them".into(),
        });
    }
    Err(Error::State(format!("nft rejected the partition rules: {message}")))
}

//! Benchmark: brings up N bare nodes and tears them down, printing both times and the memory
//! a node takes: the kernel's (slab, per-CPU, stacks, page tables) and this process's
//! resident set, grown while the network came up, over N.
//!
//! `bringup --nodes N [--ipv6] [--frames]`; the last line is
//! `bringup N=<n> up=<s> down=<s> mem=<KiB a node>` (read by scripts/bench). `--ipv6` makes
//! the network dual stack. `--frames` waits 3 s after bring-up (duplicate address detection
//! and the first router solicitation of each link-local address are done by then), then
//! appends ` sent=<frames> received=<frames> most_received=<frames>`: what the nodes' eth0
//! sent and received, on average and at most, with no program running (scripts/bench-dual-stack).

use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

/// The memory counted, in KiB: the kernel's unreclaimable parts and our resident set.
fn memory() -> Result<u64, Error> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |text: &str, key: &str| -> Result<u64, Error> {
        let line = text.lines().find_map(|l| l.strip_prefix(key)).ok_or(format!("no {key}"))?;
        Ok(line.trim().trim_end_matches("kB").trim().parse()?)
    };
    let kernel = ["Slab:", "Percpu:", "KernelStack:", "PageTables:"]
        .iter()
        .map(|k| field(&meminfo, k))
        .sum::<Result<u64, Error>>()?;
    Ok(kernel + field(&status, "VmRSS:")?)
}

/// Waits until the kernel has freed what an earlier network left to its clean-up workers
/// (namespaces go some time after their last descriptor): the count stops falling.
fn settle() -> Result<u64, Error> {
    let mut last = memory()?;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(200));
        let now = memory()?;
        if now + 1024 >= last {
            return Ok(now);
        }
        last = now;
    }
    Ok(last)
}

/// The packets node `node`'s eth0 received and sent (`/proc/net/dev` read inside the node:
/// its own network namespace's).
fn eth0_packets(node: &netdriver::Node) -> Result<(u64, u64), Error> {
    let out = node.exec(["cat", "/proc/net/dev"])?;
    let text = String::from_utf8(out.stdout)?;
    let line = text.lines().find_map(|l| l.trim().strip_prefix("eth0:")).ok_or("no eth0 in /proc/net/dev")?;
    let fields: Vec<u64> = line.split_whitespace().map(str::parse).collect::<Result<_, _>>()?;
    Ok((fields[1], fields[9]))
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = match args.iter().position(|a| a == "--nodes") {
        Some(i) => args.get(i + 1).ok_or("--nodes needs a number")?.parse()?,
        None => 10,
    };
    let spec =
        netdriver::NetworkSpec { ipv6: args.iter().any(|a| a == "--ipv6"), ..netdriver::NetworkSpec::new("bench", n) };
    let before = settle()?;
    let t = Instant::now();
    let network = netdriver::Network::up(&spec)?;
    let up = t.elapsed().as_secs_f64();
    let per_node = memory()?.saturating_sub(before) as f64 / n as f64;
    let mut frames = String::new();
    if args.iter().any(|a| a == "--frames") {
        std::thread::sleep(Duration::from_secs(3));
        let counts = network.nodes().iter().map(eth0_packets).collect::<Result<Vec<_>, _>>()?;
        let received: u64 = counts.iter().map(|c| c.0).sum();
        let sent: u64 = counts.iter().map(|c| c.1).sum();
        let most = counts.iter().map(|c| c.0).max().unwrap_or(0);
        frames = format!(
            " sent={:.1} received={:.1} most_received={most}",
            sent as f64 / n as f64,
            received as f64 / n as f64
        );
    }
    let t = Instant::now();
    network.down()?;
    let down = t.elapsed().as_secs_f64();
    println!("bringup N={n} up={up:.3} down={down:.3} mem={per_node:.0}{frames}");
    Ok(())
}

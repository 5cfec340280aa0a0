//! Benchmark: brings up N bare nodes and tears them down, printing both times and the memory
//! a node takes: the kernel's (slab, per-CPU, stacks, page tables) and this process's
//! resident set, grown while the network came up, over N.
//!
//! `bringup --nodes N`; the last line is `bringup N=<n> up=<s> down=<s> mem=<KiB a node>`
//! (read by scripts/bench).

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

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = match args.iter().position(|a| a == "--nodes") {
        Some(i) => args.get(i + 1).ok_or("--nodes needs a number")?.parse()?,
        None => 10,
    };
    let spec = netdriver::NetworkSpec::new("bench", n);
    let before = settle()?;
    let t = Instant::now();
    let network = netdriver::Network::up(&spec)?;
    let up = t.elapsed().as_secs_f64();
    let per_node = memory()?.saturating_sub(before) as f64 / n as f64;
    let t = Instant::now();
    network.down()?;
    let down = t.elapsed().as_secs_f64();
    println!("bringup N={n} up={up:.3} down={down:.3} mem={per_node:.0}");
    Ok(())
}

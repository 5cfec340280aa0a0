//! Benchmark: on N bare nodes, partition the network in two halves and heal it, then (where
//! the kernel has netem) give every node a 10 ms delay and clear it again.
//!
//! `conditions --nodes N`; prints `partition N=<n> pairs=<p> partition=<s> heal=<s>` and
//! `qos N=<n> apply=<s> clear=<s>` (or `qos N=<n> skipped: <why>`), read by scripts/bench.

use std::time::{Duration, Instant};

use netdriver::{Direction, Network, NetworkSpec, Qos, QosTarget};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = match args.iter().position(|a| a == "--nodes") {
        Some(i) => args.get(i + 1).ok_or("--nodes needs a number")?.parse()?,
        None => 100,
    };
    let network = Network::up(&NetworkSpec::new("bench-conditions", n))?;
    let names: Vec<&str> = network.nodes().iter().map(netdriver::Node::name).collect();
    let (left, right) = names.split_at(n / 2);

    let t = Instant::now();
    network.partition([left, right])?;
    let partition = t.elapsed().as_secs_f64();
    let pairs: usize = network.cuts().iter().map(|c| c.from.len() * c.to.len()).sum();
    let t = Instant::now();
    network.heal()?;
    println!("partition N={n} pairs={pairs} partition={partition:.3} heal={:.3}", t.elapsed().as_secs_f64());

    let delay = Qos { delay: Duration::from_millis(10), ..Qos::default() };
    let t = Instant::now();
    let shaped =
        names.iter().try_for_each(|node| network.configure_qos(&QosTarget::node(*node, Direction::Receive), delay));
    match shaped {
        Ok(()) => {
            let apply = t.elapsed().as_secs_f64();
            let t = Instant::now();
            network.clear_qos()?;
            println!("qos N={n} apply={apply:.3} clear={:.3}", t.elapsed().as_secs_f64());
        }
        Err(e) => println!("qos N={n} skipped: {e}"),
    }
    network.down()?;
    Ok(())
}

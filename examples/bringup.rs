//! Benchmark: brings up N bare nodes and tears them down, printing both times.
//!
//! `bringup --nodes N`; the last line is `bringup N=<n> up=<s> down=<s>` (read by scripts/bench).

use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = match args.iter().position(|a| a == "--nodes") {
        Some(i) => args.get(i + 1).ok_or("--nodes needs a number")?.parse()?,
        None => 10,
    };
    let spec = netdriver::NetworkSpec::new("bench", n);
    let t = Instant::now();
    let network = netdriver::Network::up(&spec)?;
    let up = t.elapsed().as_secs_f64();
    let t = Instant::now();
    network.down()?;
    let down = t.elapsed().as_secs_f64();
    println!("bringup N={n} up={up:.3} down={down:.3}");
    Ok(())
}

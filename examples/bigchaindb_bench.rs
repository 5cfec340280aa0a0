//! How long a BigchainDB network takes to become usable (every node has committed the first
//! block), started the way netdriver does it (each service on all nodes at once, level by
//! level) against node by node (each node's database, BigchainDB and Tendermint in turn, the
//! way a per-node driver or a loop of `docker start` would), in one run on the same nodes.
//! Between the two, every node's database and chain are reset, so both start fresh.
//!
//! ```sh
//! sudo cargo run --release --example bigchaindb_bench -- 4 8
//! ```

use std::time::Instant;

use netdriver::profile::{BigchainDb, BigchainDbNode, Profile};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let profile = BigchainDb::locate(|_| None)?;
    println!("| nodes | bring-up + prepare | start, all nodes at once | start, node by node | speedup |");
    println!("|---:|---:|---:|---:|---:|");
    for n in if sizes.is_empty() { vec![4] } else { sizes } {
        let t = Instant::now();
        let network = profile.up(&profile.spec("bdb-bench", n)?)?;
        let up = t.elapsed().as_secs_f64();

        let t = Instant::now();
        profile.start(&network)?;
        let parallel = t.elapsed().as_secs_f64();

        network.stop()?;
        for node in network.nodes() {
            node.reset_db()?;
            node.reset_tendermint()?;
        }
        let t = Instant::now();
        for node in network.nodes() {
            node.start()?;
        }
        profile.settle(&network)?;
        let sequential = t.elapsed().as_secs_f64();

        println!("| {n} | {up:.2} s | {parallel:.2} s | {sequential:.2} s | {:.1}x |", sequential / parallel);
        network.down()?;
    }
    Ok(())
}

//! The original BigchainDB example in Rust: four nodes, node 0 stops, a signed CREATE
//! transaction goes to node 1, node 0 starts again, and every node returns it.
//!
//! Needs the stack of `scripts/install-stack`. Rust has no BigchainDB driver, so the
//! transaction is made and signed by BigchainDB's own Python library, from the Python that
//! runs the `bigchaindb` program.
//!
//! ```sh
//! sudo cargo run --release --example bigchaindb
//! ```

use std::process::Command;
use std::time::{Duration, Instant};

use netdriver::profile::{BigchainDb, Profile};

const SIGN: &str = "
import json
from bigchaindb.common.crypto import generate_key_pair
from bigchaindb.common.transaction import Transaction
alice = generate_key_pair()
tx = Transaction.create([alice.public_key], [([alice.public_key], 1)],
                        asset={'message': 'Hello BigchainDB from Rust'})
print(json.dumps(tx.sign([alice.private_key]).to_dict()))
";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let profile = BigchainDb::locate(|_| None)?;
    let started = Instant::now();
    let network = profile.launch("bigchaindb-rs", 4)?;
    println!("4 nodes up in {:.1} s, logs in {}", started.elapsed().as_secs_f64(), network.run_dir().display());
    let [node0, node1, ..] = network.nodes() else { unreachable!("four nodes") };

    node0.stop()?;
    let python = profile.bigchaindb().with_file_name("python");
    let tx: serde_json::Value = serde_json::from_slice(&Command::new(python).args(["-c", SIGN]).output()?.stdout)?;
    let id = tx["id"].as_str().ok_or("no transaction id")?.to_string();
    let url = format!("{}transactions?mode=commit", node1.url().ok_or("no url")?);
    let posted = node1.exec([
        "curl",
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Content-Type: application/json",
        "-d",
        &tx.to_string(),
        &url,
    ])?;
    println!("posted {id} to node1: HTTP {}", String::from_utf8_lossy(&posted.stdout));
    node0.start()?;

    for node in network.nodes() {
        let url = format!("{}transactions/{id}", node.url().ok_or("no url")?);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = node.exec(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", &url])?;
            if got.stdout == b"200" {
                println!("{} returns the transaction", node.name());
                break;
            }
            if Instant::now() > deadline {
                return Err(format!("{} lacks {id}", node.name()).into());
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }
    network.down()?;
    Ok(())
}

//! Scale smoke test: 200 bare nodes come up, answer pings from the host, and go away
//! without leftovers. Needs `ping` (Debian: iputils-ping).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{teardown, up};
use netdriver::NetworkSpec;

const NODES: usize = 200;

#[test]
fn two_hundred_nodes_answer_pings() {
    let since = Instant::now();
    let network = up(&NetworkSpec::new("t-scale", NODES));
    let up_time = since.elapsed();
    assert_eq!(network.nodes().len(), NODES);

    // The first, the last, and eight spread in between.
    for index in (0..10).map(|i| i * (NODES - 1) / 9) {
        let ip = network.nodes()[index].ip().to_string();
        let out = Command::new("ping")
            .args(["-c1", "-W1", &ip])
            .output()
            .unwrap_or_else(|e| panic!("running ping (install iputils-ping): {e}"));
        assert!(
            out.status.success(),
            "node{index} ({ip}) does not answer ping: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    let since = Instant::now();
    teardown(network);
    let down_time = since.elapsed();
    eprintln!("{NODES} nodes: up {up_time:.2?}, down {down_time:.2?}");
    assert!(
        up_time < Duration::from_secs(10) && down_time < Duration::from_secs(10),
        "up {up_time:?}, down {down_time:?}"
    );
}

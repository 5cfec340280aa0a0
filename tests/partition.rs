//! Partitions on the host kernel (no netem needed): a real etcd cluster split 1|2, a one-way
//! block checked with UDP, heal, and bad input that changes nothing.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{exec, teardown, up, wait_until};
use netdriver::{Error, Network, NetworkSpec, Node};

fn put(node: &Node, key: &str, value: &str) -> bool {
    exec(node, &["etcdctl", "--command-timeout=2s", "put", key, value]).status.success()
}

fn get(node: &Node, key: &str) -> Option<String> {
    let out = exec(node, &["etcdctl", "--command-timeout=2s", "get", key, "--print-value-only"]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn the_minority_cannot_write_and_everyone_converges_after_heal() {
    let mut spec =
        netdriver::manifest::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/etcd.toml")).unwrap();
    spec.name = "t-part-etcd".into();
    let network = up(&spec);
    network.start().expect("starting the etcd cluster");
    let [node0, node1, node2] = network.nodes() else { panic!("three nodes") };

    network.partition([vec!["node0"], vec!["node1", "node2"]]).unwrap();
    let cuts = network.cuts();
    assert_eq!(cuts.len(), 2, "{cuts:?}");
    assert_eq!(
        (cuts[0].from.as_slice(), cuts[0].to.as_slice()),
        (&["node0".into()][..], &["node1".into(), "node2".into()][..])
    );
    assert!(network.is_cut("node2", "node0").unwrap() && !network.is_cut("node1", "node2").unwrap());
    assert!(!put(node0, "k", "minority"), "node0 wrote without a quorum");
    assert!(put(node1, "k", "majority"), "the majority could not write");

    network.heal().unwrap();
    assert!(network.cuts().is_empty());
    // The minority's timed-out write may still commit after the heal (its outcome was
    // unknown, not failed): what must hold is that every member agrees, and that the former
    // minority writes again and everyone sees it.
    wait_until("node0 can write again", Duration::from_secs(15), || put(node0, "k2", "healed"));
    for node in [node0, node1, node2] {
        wait_until(&format!("{} sees k2 = healed", node.name()), Duration::from_secs(15), || {
            get(node, "k2").as_deref() == Some("healed")
        });
    }
    let values: Vec<Option<String>> = [node0, node1, node2].iter().map(|n| get(n, "k")).collect();
    assert!(values.iter().all(|v| v == &values[0] && v.is_some()), "members disagree on k: {values:?}");
    teardown(network);
}

/// Sends five UDP datagrams from `from` to `to` and tells whether any arrived.
fn udp_arrives(network: &Network, from: &str, to: &str) -> bool {
    let (from, to) = (network.node(from).unwrap(), network.node(to).unwrap());
    let receiver = "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); \
                    s.bind(('0.0.0.0', 9000)); s.settimeout(2); print(s.recvfrom(64)[0].decode())";
    let mut listen = Command::new("python3");
    listen.args(["-c", receiver]).stdout(Stdio::piped()).stderr(Stdio::null());
    let listener = to.spawn(&mut listen).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let sender = format!(
        "import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for _ in range(5):\n    s.sendto(b'hello', ('{}', 9000)); time.sleep(0.05)",
        to.ip()
    );
    assert!(exec(from, &["python3", "-c", &sender]).status.success());
    let out = listener.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).contains("hello")
}

#[test]
fn a_block_is_one_way_and_heal_lifts_it() {
    let network = up(&NetworkSpec::new("t-part-block", 3));
    assert!(udp_arrives(&network, "node0", "node1"));
    network.block("node0", "node1").unwrap();
    assert_eq!(network.cuts(), vec![netdriver::Cut { from: vec!["node0".into()], to: vec!["node1".into()] }]);
    network.block("node0", "node1").unwrap();
    assert_eq!(network.cuts().len(), 1, "the same block twice is one cut");
    assert!(!udp_arrives(&network, "node0", "node1"), "node0 still reaches node1");
    assert!(udp_arrives(&network, "node1", "node0"), "the block cut the other direction too");
    assert!(udp_arrives(&network, "node0", "node2"), "the block cut an unrelated pair");
    network.heal().unwrap();
    assert!(udp_arrives(&network, "node0", "node1"), "heal did not lift the block");
    teardown(network);
}

#[test]
fn bad_partitions_change_nothing() {
    let network = up(&NetworkSpec::new("t-part-bad", 3));
    network.block("node0", "node2").unwrap();
    let before = network.cuts();
    let unknown = network.partition([["node0"], ["node9"]]).unwrap_err();
    assert!(matches!(unknown, Error::UnknownNode { .. }), "{unknown}");
    let twice = network.partition([vec!["node0", "node1"], vec!["node1"]]).unwrap_err();
    assert!(twice.to_string().contains("node1 is in two groups"), "{twice}");
    let itself = network.block("node1", "1").unwrap_err();
    assert!(itself.to_string().contains("the same node"), "{itself}");
    assert_eq!(network.cuts(), before);
    teardown(network);
}

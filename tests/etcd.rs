//! A real 3-member etcd cluster from examples/etcd.toml: a write made while one member is
//! stopped reaches that member once it is started again.

use std::path::Path;
use std::time::Duration;

use crate::common::{exec, exec_ok, teardown, up, wait_until};
use netdriver::Node;

/// The value of key `k` as member `node` sees it, or `None` if it cannot answer.
fn get(node: &Node) -> Option<String> {
    let out = exec(node, &["etcdctl", "--endpoints", "http://127.0.0.1:2379", "get", "k", "--print-value-only"]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn a_write_reaches_a_member_that_was_down() {
    for program in ["etcd", "etcdctl"] {
        assert!(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(program).is_file()),
            "{program} is not on PATH: install etcd-server and etcd-client (scripts/setup does)"
        );
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/etcd.toml");
    let mut spec = netdriver::manifest::load(&manifest).unwrap_or_else(|e| panic!("{e}"));
    spec.name = "t-etcd".into();
    let network = up(&spec);
    network.start().expect("starting the etcd cluster");
    let [node0, node1, _] = network.nodes() else { panic!("three nodes") };

    node0.stop().expect("stopping node0");
    let endpoint = format!("http://{}:2379", node1.ip());
    assert_eq!(exec_ok(node1, &["etcdctl", "--endpoints", &endpoint, "put", "k", "v"]).trim(), "OK");

    node0.start().expect("starting node0 again");
    for node in network.nodes() {
        wait_until(&format!("{} returns k = v", node.name()), Duration::from_secs(10), || {
            get(node).as_deref() == Some("v")
        });
    }
    teardown(network);
}

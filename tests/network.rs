//! Networks for real: HTTP between nodes and from the host, each node's own view of the
//! system (hostname, /etc/hosts, /tmp, addresses), two networks side by side, and teardown
//! (explicit or by Drop) leaving nothing behind. Failed bring-ups are in errors.rs.

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{
    assert_no_leftovers, exec, exec_ok, http_get, is_ok_response, node_processes, record_path, teardown, up, uplinks,
    web_service, WEB_PORT,
};
use netdriver::{Network, NetworkSpec};

fn web_addr(network: &Network, node: &str) -> SocketAddr {
    SocketAddr::new(network.node(node).expect("node").ip().into(), WEB_PORT)
}

/// Asserts that node1 fetches node0's page by name and node2's by address, and that the
/// host fetches node0's.
fn assert_http_works(network: &Network) {
    let node1 = network.node("node1").expect("node1");
    let ip2 = network.node("node2").expect("node2").ip();
    assert!(exec_ok(node1, &["curl", "-sf", "http://node0:8000/"]).contains("Directory listing"));
    assert!(exec_ok(node1, &["curl", "-sf", &format!("http://{ip2}:8000/")]).contains("Directory listing"));
    let response = http_get(web_addr(network, "node0"), Duration::from_secs(2)).expect("node0 answers the host");
    assert!(is_ok_response(&response), "{response}");
}

#[test]
fn http_between_nodes_and_from_the_host() {
    let network = up(&NetworkSpec::new("t-http", 3).service(web_service()));
    network.start().expect("starting web on every node");
    assert_http_works(&network);
    teardown(network);
}

#[test]
fn each_node_has_its_own_view() {
    let network = up(&NetworkSpec::new("t-views", 3));
    let (node0, node1) = (network.node("node0").unwrap(), network.node("node1").unwrap());

    assert_eq!(exec_ok(node1, &["hostname"]).trim(), "node1");

    let hosts = exec_ok(node0, &["cat", "/etc/hosts"]);
    for node in network.nodes() {
        let line = format!("{}\t{}", node.ip(), node.name());
        assert!(hosts.lines().any(|l| l == line), "/etc/hosts lacks {line:?}:\n{hosts}");
    }

    let file = format!("/tmp/netdriver-view-{}", network.id());
    exec_ok(node0, &["sh", "-c", &format!("echo node0 > {file}")]);
    assert_eq!(exec_ok(node0, &["cat", &file]), "node0\n");
    assert!(!exec(node1, &["test", "-e", &file]).status.success(), "node1 sees node0's {file}");
    assert!(!std::path::Path::new(&file).exists(), "the host sees node0's {file}");

    let addrs = exec_ok(node1, &["ip", "-o", "addr"]);
    let inet = format!("inet {}/{}", node1.ip(), network.subnet().prefix);
    assert!(addrs.lines().any(|l| l.contains("eth0") && l.contains(&inet)), "no {inet} on eth0:\n{addrs}");
    let wire_v6 = addrs.lines().any(|l| l.contains("eth0") && l.contains("inet6"));
    assert!(!wire_v6, "eth0 has IPv6 by default:\n{addrs}");
    teardown(network);
}

#[test]
fn two_networks_side_by_side() {
    let bring_up = |name: &'static str| {
        std::thread::spawn(move || {
            let network = up(&NetworkSpec::new(name, 3).service(web_service()));
            network.start().expect("starting web");
            network
        })
    };
    let (a, b) = (bring_up("t-pair-a"), bring_up("t-pair-b"));
    let (a, b) = (a.join().expect("bringing up a"), b.join().expect("bringing up b"));

    assert_ne!(a.id(), b.id());
    assert!(!a.subnet().overlaps(&b.subnet()), "{} overlaps {}", a.subnet(), b.subnet());
    let links = uplinks();
    for id in [a.id(), b.id()] {
        assert!(links.contains(&format!("nd{id}")), "no uplink nd{id} in {links:?}");
    }
    assert_http_works(&a);
    assert_http_works(&b);

    teardown(a);
    assert_http_works(&b);
    teardown(b);
}

#[test]
fn down_and_drop_leave_nothing() {
    let network = up(&NetworkSpec::new("t-down", 3).service(web_service()));
    network.start().expect("starting web");
    let id = network.id().to_string();
    assert!(record_path(&id).exists(), "no record for a live network");
    assert!(uplinks().contains(&format!("nd{id}")));
    assert_eq!(node_processes(&id).len(), 3, "one web server per node");
    teardown(network);

    let network = up(&NetworkSpec::new("t-drop", 2).service(web_service()));
    network.start().expect("starting web");
    let (id, run_dir) = (network.id().to_string(), network.run_dir().to_path_buf());
    drop(network);
    assert_no_leftovers(&id);
    std::fs::remove_dir_all(run_dir).expect("removing the run directory");
}

#[tokio::test(flavor = "multi_thread")]
async fn works_from_an_async_test() {
    let network = up(&NetworkSpec::new("t-async", 3).service(web_service()));
    network.start().expect("starting web on every node");
    assert_http_works(&network);
    teardown(network);
}

//! Scale: more nodes than a bridge has ports, every pair of 100 nodes connected with no
//! neighbour-table overflow, and sizes the host or netdriver cannot hold refused up front.
//! Needs `ping` (iputils-ping) and `prlimit` (util-linux).

use std::process::Command;

use crate::common::{exec, exec_ok, nd, shell_service, stderr, teardown, up, uplinks, write_manifest};
use netdriver::{NetworkSpec, Probe, MAX_NODES};

/// How often the kernel's shared neighbour table was full (`table_fulls` of
/// /proc/net/stat/arp_cache, summed over the CPUs): it counts every overflow, while the
/// kernel log's "neighbor table overflow!" is rate-limited.
fn neighbour_table_fulls() -> u64 {
    let stats = std::fs::read_to_string("/proc/net/stat/arp_cache").unwrap();
    let mut lines = stats.lines();
    let column = lines.next().unwrap().split_whitespace().position(|c| c == "table_fulls").unwrap();
    lines.map(|l| u64::from_str_radix(l.split_whitespace().nth(column).unwrap(), 16).unwrap()).sum()
}

/// The kernel log's overflow lines (empty where the log cannot be read).
fn overflow_lines() -> usize {
    let out = Command::new("dmesg").output();
    out.map_or(0, |o| String::from_utf8_lossy(&o.stdout).matches("neighbor table overflow").count())
}

/// Asserts that a network's 2N + 2 permanent neighbour entries (N > 1024 here) do not count
/// against the shared table's limit (gc_thresh3, 1024 by default; the kernel refuses a new
/// dynamic entry past it): `node` can still make a dynamic one.
pub(crate) fn assert_permanent_entries_leave_room(node: &netdriver::Node) {
    exec_ok(node, &["ip", "route", "add", "198.51.100.0/24", "dev", "eth0"]);
    let _ = exec(node, &["ping", "-c1", "-W1", "198.51.100.7"]);
    let probe = exec_ok(node, &["ip", "neigh", "show", "198.51.100.7"]);
    assert!(probe.contains("198.51.100.7 dev eth0"), "no dynamic neighbour entry could be made: {probe:?}");
    exec_ok(node, &["ip", "route", "del", "198.51.100.0/24", "dev", "eth0"]);
}

fn pings(node: &netdriver::Node, ip: &str) -> bool {
    exec(node, &["ping", "-c1", "-W2", ip]).status.success()
}

#[test]
fn eleven_hundred_nodes_reach_each_other_and_a_partition_holds_and_heals() {
    const NODES: usize = 1100;
    let (fulls, overflows) = (neighbour_table_fulls(), overflow_lines());
    let network = up(&NetworkSpec::new("t-scale", NODES));
    let (first, last) = (&network.nodes()[0], &network.nodes()[NODES - 1]);
    let last_ip = last.ip().to_string();
    for node in [first, last, &network.nodes()[NODES / 2]] {
        let out = Command::new("ping").args(["-c1", "-W2", &node.ip().to_string()]).output().unwrap();
        assert!(out.status.success(), "the host cannot ping {}: {}", node.name(), String::from_utf8_lossy(&out.stdout));
    }
    assert!(pings(first, &last_ip), "node0 cannot ping node{}", NODES - 1);

    // A node's only neighbour is the lab, by a permanent entry: no ARP, whatever the size.
    let neighbours = exec_ok(first, &["ip", "-4", "neigh", "show"]);
    assert_eq!(neighbours.trim(), "169.254.1.1 dev eth0 lladdr 02:6e:64:00:00:01 PERMANENT", "{neighbours}");
    assert_permanent_entries_leave_room(first);

    // The first ten nodes against the rest.
    let ten: Vec<String> = (0..10).map(|i| format!("node{i}")).collect();
    network.partition([ten]).unwrap();
    assert!(!pings(first, &last_ip), "node0 reached node{} across the partition", NODES - 1);
    assert!(pings(first, &network.nodes()[9].ip().to_string()), "node0 lost node9, in its own group");
    assert!(pings(last, &network.nodes()[500].ip().to_string()), "node{} lost node500, in its own group", NODES - 1);
    network.heal().unwrap();
    assert!(pings(first, &last_ip), "node0 cannot ping node{} after the heal", NODES - 1);

    assert_eq!(neighbour_table_fulls(), fulls, "the kernel's neighbour table overflowed");
    assert_eq!(overflow_lines(), overflows, "the kernel logged a neighbour table overflow");
    teardown(network);
}

#[test]
fn every_pair_of_a_hundred_nodes_connects_without_a_neighbour_table_overflow() {
    const NODES: usize = 100;
    let (fulls, overflows) = (neighbour_table_fulls(), overflow_lines());
    let listen = shell_service("listen", "exec python3 -c \"import socket,time\ns=socket.create_server(('{ip}', 7000), backlog=512)\nwhile True: s.accept()\"")
        .ready(Probe::Tcp(7000), std::time::Duration::from_secs(120));
    let network = up(&NetworkSpec::new("t-mesh", NODES).service(listen));
    network.start().unwrap();
    let ips: Vec<String> = network.nodes().iter().map(|n| n.ip().to_string()).collect();
    // Each node opens a connection to every other one and keeps them all open.
    let script = "import socket,sys\nopen_=[socket.create_connection((ip,7000),timeout=10) for ip in sys.argv[1:]]\nprint(len(open_))";
    let mut connected = 0;
    for (i, node) in network.nodes().iter().enumerate() {
        let others: Vec<&str> = ips.iter().enumerate().filter(|(j, _)| *j != i).map(|(_, ip)| ip.as_str()).collect();
        let out = exec_ok(node, &[&["python3", "-c", script], &others[..]].concat());
        connected += out.trim().parse::<usize>().unwrap_or_else(|_| panic!("{}: {out}", node.name()));
    }
    assert_eq!(connected, NODES * (NODES - 1));
    assert_eq!(neighbour_table_fulls(), fulls, "the kernel's neighbour table overflowed");
    assert_eq!(overflow_lines(), overflows, "the kernel logged a neighbour table overflow");
    teardown(network);
}

#[test]
fn sizes_past_the_limits_are_refused_before_anything_is_made() {
    let before = uplinks();
    let err = netdriver::Network::up(&NetworkSpec::new("t-too-many", MAX_NODES + 1)).unwrap_err().to_string();
    assert!(err.contains("10001 nodes: a network has 1 to 10000"), "{err}");

    // 1023 nodes (one more than a bridge took) in a subnet that holds 1021.
    let manifest = write_manifest(
        "t-subnet-small",
        "[network]\nname = \"t-subnet-small\"\nnodes = 1023\nsubnet = \"10.251.0.0/22\"\n",
    );
    let out = nd(&["run", "-f", manifest.to_str().unwrap(), "--", "true"]);
    let err = stderr(&out);
    assert!(
        out.status.code() == Some(1) && err.contains("10.251.0.0/22 holds 1021 nodes, the network has 1023"),
        "{err}"
    );

    // What the host holds: the open-files limit, when its hard limit is too low and the
    // process may not raise it (no CAP_SYS_RESOURCE).
    let manifest = write_manifest("t-nofile", "[network]\nname = \"t-nofile\"\nnodes = 1000\n");
    let out = Command::new("setpriv")
        .args(["--bounding-set=-sys_resource", "prlimit", "--nofile=512:512", env!("CARGO_BIN_EXE_netdriver")])
        .args(["run", "-f", manifest.to_str().unwrap(), "--", "true"])
        .output()
        .expect("running setpriv and prlimit (util-linux)");
    let err = stderr(&out);
    assert!(out.status.code() == Some(1), "{err}");
    assert!(
        err.contains("the host cannot hold 1000 nodes: they need 1512 open files, and the hard limit (ulimit -Hn) is 512, and this process may not raise it"),
        "{err}"
    );
    assert_eq!(uplinks(), before, "a refused network made an uplink");
}

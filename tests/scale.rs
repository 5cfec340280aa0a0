//! Scale: more nodes than a bridge has ports, every pair of 100 nodes connected with no
//! neighbour-table overflow, a kvstore network of 100 validators committing, and sizes the
//! host or netdriver cannot hold refused up front.
//! Needs `ping` (iputils-ping) and `prlimit` (util-linux).

use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{
    assert_no_leftovers, exec, exec_ok, nd, shell_service, stderr, teardown, up, uplinks, wait_until, write_manifest,
};
use crate::profiles::{get, kvstore, rpc};
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

/// The host's 1-minute load average and the memory in use (MiB), for the test's report.
fn host_load() -> (f64, i64) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let kib = |key: &str| -> i64 {
        let line = meminfo.lines().find(|l| l.starts_with(key)).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (load.split_whitespace().next().unwrap().parse().unwrap(), (kib("MemTotal:") - kib("MemAvailable:")) / 1024)
}

#[test]
fn a_kvstore_network_of_a_hundred_validators_commits_a_transaction_everywhere() {
    const NODES: usize = 100;
    let (_, before) = host_load();
    let began = Instant::now();
    let network = kvstore().launch("t-kv100", NODES).unwrap_or_else(|e| panic!("{e}"));
    let ready = began.elapsed();
    let (ready_load, ready_mem) = host_load();
    let id = network.id().to_string();
    let nodes = network.nodes();
    let sent = Instant::now();
    // Into the mempool of one node (a commit takes longer at this size than an RPC call
    // waits for one), then into every node's state once a block holds it.
    let answer = rpc(&nodes[NODES / 2], "broadcast_tx_sync?tx=%22scale=1%22").expect("an RPC answer");
    assert_eq!(answer["result"]["code"].as_u64(), Some(0), "{answer}");
    wait_until("node0 has the key", Duration::from_secs(120), || get(&nodes[0], "scale").as_deref() == Some("MQ=="));
    let committed = sent.elapsed();
    for node in nodes {
        wait_until(&format!("{} has the key", node.name()), Duration::from_secs(120), || {
            get(node, "scale").as_deref() == Some("MQ==")
        });
    }
    let everywhere = sent.elapsed();
    let (load, _) = host_load();
    eprintln!(
        "kvstore N={NODES}: ready in {:.1} s (load {ready_load:.0}, {} MiB a node), sent to node{}, committed \
         on node0 after {:.1} s, on every node after {:.1} s (load {load:.0})",
        ready.as_secs_f64(),
        (ready_mem - before) / NODES as i64,
        NODES / 2,
        committed.as_secs_f64(),
        everywhere.as_secs_f64()
    );
    drop(network);
    assert_no_leftovers(&id);
}

#[test]
fn a_slow_start_reports_how_many_services_are_ready() {
    // Ready 7 s after their spawn: the controller reports progress every 5 s meanwhile.
    let slow = r#"
[network]
name = "t-progress"
nodes = 3

[[service]]
name = "slow"
command = "sh"
args = ["-c", "sleep 7; exec python3 -m http.server 8000 --bind {ip}"]
ready = { tcp = 8000 }
ready_timeout = "60s"
"#;
    let manifest = write_manifest("t-progress", slow);
    let out = nd(&["run", "-f", manifest.to_str().unwrap(), "--", "true"]);
    std::fs::remove_file(&manifest).unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let progress = stderr(&out).lines().filter(|l| l.contains(" of 3 services ready after ")).count();
    assert!(progress >= 1, "no progress line: {}", stderr(&out));
}

#[test]
fn a_readiness_timeout_on_a_host_short_of_cpu_says_so() {
    // Busy loops, 6 per CPU on each of 2 nodes, raise the 1-minute load average past twice
    // the CPUs well within the 30 s a service that never opens its port is given.
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    let burn = shell_service("burn", &format!("for i in $(seq {}); do (while :; do :; done) & done; wait", 6 * cpus));
    let never = shell_service("never", "exec sleep 1000").after("burn").ready(Probe::Tcp(9), Duration::from_secs(30));
    let network = up(&NetworkSpec::new("t-strain", 2).service(burn).service(never));
    let id = network.id().to_string();
    let err = network.start().unwrap_err().to_string();
    assert!(err.contains("was not ready (port 9) 30s after its start"), "{err}");
    assert!(err.contains("the host is short of CPU (load "), "{err}");
    assert!(err.contains("give services longer (ready_timeout) or run fewer nodes"), "{err}");
    drop(network);
    assert_no_leftovers(&id);
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

//! Dual-stack networks: partitions and blocks cut IPv4, IPv6 (global and link-local) and
//! frames of any other ethertype, and a heal lets routed traffic through again at once; an
//! etcd cluster on IPv6 alone; the host, names and status on both stacks; bad input.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{exec, exec_ok, nd, stdout, teardown, up, up_cli, wait_exit, wait_until, write_manifest};
use netdriver::{Error, Network, NetworkSpec, Node};

/// Whether links made on the host from now on get IPv6.
const DEFAULT_DISABLE_IPV6: &str = "/proc/sys/net/ipv6/conf/default/disable_ipv6";

/// An ethertype no protocol uses (IEEE 802 local experimental ethertype 1).
const ETHERTYPE: u16 = 0x88b5;

/// Listens on `node` until its standard input closes: UDP port 9000 over IPv4 and over IPv6
/// (telling link-local senders from global ones), and raw frames of [`ETHERTYPE`] on eth0;
/// prints what came.
const RECEIVER: &str = r#"
import select, socket, sys
v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); v4.bind(("0.0.0.0", 9000))
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); v6.bind(("::", 9000))
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(int(sys.argv[1]))); raw.bind(("eth0", 0))
print("listening", flush=True)
seen, open_ = set(), True
while open_:
    for s in select.select([v4, v6, raw, sys.stdin], [], [])[0]:
        if s is sys.stdin:
            open_ = bool(sys.stdin.read())
            continue
        data, addr = s.recvfrom(2048)
        if s is v4: seen.add("ipv4")
        elif s is v6: seen.add("link-local" if addr[0].startswith("fe80") else "ipv6")
        elif b"netdriver" in data: seen.add("raw")
print(" ".join(sorted(seen)))
"#;

/// Sends each kind five times from the sender's node: argv is the receiver's IPv4, IPv6,
/// link-local and MAC address, and the ethertype.
const SENDER: &str = r#"
import socket, sys, time
ip, ip6, link, mac, kind = sys.argv[1:6]
v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW); raw.bind(("eth0", 0))
me = open("/sys/class/net/eth0/address").read().strip()
frame = bytes.fromhex(mac.replace(":", "") + me.replace(":", "")) + int(kind).to_bytes(2, "big") + b"netdriver".ljust(46)
for _ in range(5):
    v4.sendto(b"x", (ip, 9000))
    v6.sendto(b"x", (ip6, 9000))
    try:
        v6.sendto(b"x", (link, 9000, 0, socket.if_nametoindex("eth0")))
    except OSError:
        pass  # no neighbour answers for a link-local address (see the lab's docs)
    assert raw.send(frame) == len(frame)
    time.sleep(0.05)
"#;

/// What of each kind `from` sends reaches `to`: a set of "ipv4", "ipv6", "link-local", "raw".
fn arrives(network: &Network, from: &str, to: &str) -> BTreeSet<String> {
    let (from, to) = (network.node(from).unwrap(), network.node(to).unwrap());
    let kind = ETHERTYPE.to_string();
    let mut listen = Command::new("python3");
    listen.args(["-c", RECEIVER, &kind]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut listener = to.spawn(&mut listen).unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(listener.stdout.as_mut().unwrap()), &mut first).unwrap();
    assert_eq!(first.trim(), "listening", "the receiver on {} did not start", to.name());
    let ip6 = to.ip6().expect("a dual-stack node").to_string();
    let (link, mac) = (link_local(to), exec_ok(to, &["cat", "/sys/class/net/eth0/address"]));
    let out = exec(from, &["python3", "-c", SENDER, &to.ip().to_string(), &ip6, &link, mac.trim(), &kind]);
    assert!(out.status.success(), "sending from {}: {}", from.name(), String::from_utf8_lossy(&out.stderr));
    // What was sent has arrived by now (the lab adds microseconds) or was dropped.
    std::thread::sleep(Duration::from_millis(200));
    drop(listener.stdin.take());
    let out = listener.wait_with_output().unwrap();
    assert!(out.status.success(), "receiving on {}: {}", to.name(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).split_whitespace().map(String::from).collect()
}

/// The link-local address of `node`'s eth0.
fn link_local(node: &Node) -> String {
    let table = exec_ok(node, &["cat", "/proc/net/if_inet6"]);
    let hex = table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.len() == 6 && f[5] == "eth0" && f[0].starts_with("fe80"))
        .map(|f| f[0].to_string())
        .expect("eth0 has a link-local address");
    let groups: Vec<u16> = (0..8).map(|i| u16::from_str_radix(&hex[i * 4..i * 4 + 4], 16).unwrap()).collect();
    std::net::Ipv6Addr::from(<[u16; 8]>::try_from(groups).unwrap()).to_string()
}

fn kinds(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

#[test]
fn cuts_hold_for_every_protocol_and_heal_at_once() {
    let network = up(&NetworkSpec { ipv6: true, ..NetworkSpec::new("t-dual-cuts", 3) });
    // Routed traffic crosses the lab; link-local and non-IP frames end at the lab, as on any
    // link to a router: they never reach another node, cut or not.
    let routed = kinds(&["ipv4", "ipv6"]);
    let none = BTreeSet::new();
    assert_eq!(arrives(&network, "node0", "node1"), routed, "before any cut");

    network.partition([vec!["node0"], vec!["node1", "node2"]]).unwrap();
    assert_eq!(arrives(&network, "node0", "node1"), none, "node0 -> node1 across the partition");
    assert_eq!(arrives(&network, "node2", "node0"), none, "node2 -> node0 across the partition");
    assert_eq!(arrives(&network, "node1", "node2"), routed, "node1 -> node2 on the same side");
    network.heal().unwrap();
    assert_eq!(arrives(&network, "node0", "node1"), routed, "right after the heal of the partition");

    network.block("node0", "node1").unwrap();
    assert_eq!(arrives(&network, "node0", "node1"), none, "node0 -> node1 through the block");
    assert_eq!(arrives(&network, "node1", "node0"), routed, "the block's other direction");
    network.heal().unwrap();
    assert_eq!(arrives(&network, "node0", "node1"), routed, "right after the heal of the block");

    // The host reaches every node on both stacks, and names resolve to both addresses.
    let host6 = network.host_ip6().expect("a dual-stack network");
    for node in network.nodes() {
        let ip6 = node.ip6().unwrap();
        assert!(network.subnet6().unwrap().overlaps_range(ip6, 128));
        let ping = Command::new("ping").args(["-c1", "-W2", &ip6.to_string()]).output().unwrap();
        assert!(ping.status.success(), "the host cannot ping {} at {ip6}", node.name());
        exec_ok(node, &["ping", "-c1", "-W2", &host6.to_string()]);
    }
    let hosts = exec_ok(&network.nodes()[0], &["getent", "ahosts", "node2"]);
    let (ip, ip6) = (network.nodes()[2].ip().to_string(), network.nodes()[2].ip6().unwrap().to_string());
    assert!(hosts.contains(&ip) && hosts.contains(&ip6), "node2 resolves to {hosts}");
    teardown(network);
}

/// `etcdctl` against `node`'s member, by its IPv6 address.
fn etcdctl(node: &Node, args: &[&str]) -> std::process::Output {
    let endpoint = format!("http://[{}]:2379", node.ip6().unwrap());
    exec(node, &[&["etcdctl", "--command-timeout=2s", "--endpoints", &endpoint][..], args].concat())
}

/// The ports `node` listens on over TCP/IPv4.
fn ipv4_listeners(node: &Node) -> Vec<u16> {
    let table = exec_ok(node, &["cat", "/proc/net/tcp"]);
    let listening = table.lines().skip(1).map(|l| l.split_whitespace().collect::<Vec<_>>()).filter(|f| f[3] == "0A");
    listening.filter_map(|f| u16::from_str_radix(f[1].rsplit(':').next()?, 16).ok()).collect()
}

#[test]
fn an_etcd_cluster_on_ipv6_alone_survives_a_member_down() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/etcd-ipv6.toml");
    let mut spec = netdriver::manifest::load(&manifest).unwrap_or_else(|e| panic!("{e}"));
    spec.name = "t-etcd6".into();
    let network = up(&spec);
    network.start().expect("starting the etcd cluster on IPv6");
    let [node0, node1, _] = network.nodes() else { panic!("three nodes") };
    for node in network.nodes() {
        assert_eq!(ipv4_listeners(node), Vec::<u16>::new(), "{} listens on IPv4", node.name());
    }

    node0.stop().expect("stopping node0");
    let put = etcdctl(node1, &["put", "k", "v"]);
    assert_eq!(stdout(&put).trim(), "OK", "put through node1: {}", String::from_utf8_lossy(&put.stderr));
    node0.start().expect("starting node0 again");
    for node in network.nodes() {
        wait_until(&format!("{} returns k = v", node.name()), Duration::from_secs(15), || {
            let out = etcdctl(node, &["get", "k", "--print-value-only"]);
            out.status.success() && stdout(&out).trim() == "v"
        });
    }
    let members = stdout(&etcdctl(node0, &["member", "list"]));
    assert_eq!(members.matches("http://[").count(), 6, "peer and client URLs of 3 members on IPv6: {members}");
    teardown(network);
}

#[test]
fn status_and_summary_show_both_addresses() {
    let manifest = write_manifest("t-dual-cli", "[network]\nname = \"t-dual-cli\"\nnodes = 2\nipv6 = true\n");
    let (mut child, _id) = up_cli(&manifest);
    let status = nd(&["--network", "t-dual-cli", "status", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&status)).expect("status --json");
    let subnet6: netdriver::Subnet6 = json["subnet6"].as_str().expect("subnet6").parse().unwrap();
    assert!(subnet6.to_string().starts_with("fd") && subnet6.prefix == 64, "{subnet6}");
    let ip6 = json["nodes"][1]["ip6"].as_str().expect("ip6");
    assert_eq!(ip6, subnet6.node(1).to_string());
    let table = stdout(&nd(&["--network", "t-dual-cli", "status"]));
    assert!(table.contains("IP6") && table.contains(ip6), "{table}");
    crate::common::signal(&child.0, nix::sys::signal::Signal::SIGINT);
    assert!(wait_exit(&mut child.0, Duration::from_secs(20)).success());
}

#[test]
fn bad_ipv6_input_is_refused_before_anything_is_made() {
    let first = up(&NetworkSpec { ipv6: true, ..NetworkSpec::new("t-dual-bad", 2) });
    let taken = first.subnet6().unwrap();
    let before = crate::common::uplinks();
    let same = NetworkSpec { ipv6: true, subnet6: Some(taken), ..NetworkSpec::new("t-dual-bad2", 2) };
    let err = Network::up(&same).unwrap_err();
    assert!(matches!(err, Error::Subnet(_)), "{err}");
    assert!(err.to_string().contains(&format!("{taken} overlaps {taken}")), "{err}");
    let inside: netdriver::Subnet6 = format!("{}/48", taken.addr).parse().unwrap();
    let err = Network::up(&NetworkSpec { subnet6: Some(inside), ..same.clone() }).unwrap_err();
    assert!(err.to_string().contains("overlaps"), "{err}");
    let web6 = crate::common::shell_service("web", "exec python3 -m http.server --bind {ip6} 8000");
    let err = Network::up(&NetworkSpec::new("t-dual-bad2", 2).service(web6)).unwrap_err();
    assert!(err.to_string().contains("names an IPv6 value") && err.to_string().contains("set ipv6 = true"), "{err}");
    let long: Result<netdriver::Subnet6, _> = "fd00:1::/96".parse();
    assert!(long.unwrap_err().to_string().contains("must be from /8 to /64"));
    assert_eq!(crate::common::uplinks(), before, "a refused network made an uplink");
    teardown(first);

    // IPv6 turned off for new links on the host: named with the fix, nothing made.
    let before = crate::common::uplinks();
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            std::fs::write(DEFAULT_DISABLE_IPV6, self.0.trim()).unwrap();
        }
    }
    let restore = Restore(std::fs::read_to_string(DEFAULT_DISABLE_IPV6).unwrap());
    std::fs::write(DEFAULT_DISABLE_IPV6, "1").unwrap();
    let err = Network::up(&NetworkSpec { ipv6: true, ..NetworkSpec::new("t-dual-bad3", 2) });
    drop(restore);
    let err = err.unwrap_err().to_string();
    assert!(err.contains("IPv6 in the host's network namespace") && err.contains("disable_ipv6=0"), "{err}");
    assert_eq!(crate::common::uplinks(), before, "a refused network made an uplink");
}

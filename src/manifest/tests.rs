//! The manifest's parsing and its errors, field by field.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::clock::{ClockSkew, Offset};
use crate::config::Format;
use crate::shaping::{Chance, Direction, Loss, Percent, Qos, Reorder};
use crate::spec::{Probe, QosRule, QosTarget, ServiceSpec};
use crate::template::{NodeVars, Template, Vars};

fn parse_str(text: &str) -> Result<NetworkSpec> {
    parse(text, Path::new("/etc/nets/test-net.toml"))
}

#[test]
fn full_manifest() {
    let spec = parse_str(
        r#"
[network]
name = "etcd"
nodes = 3
subnet = "10.77.0.0/24"
ipv6 = true
subnet6 = "fd00:77::/64"
run_root = "/tmp/nd"
keep_data = true
url = "http://{ip}:2379/"

[[service]]
name = "db"
command = "/usr/bin/db"
ready = { tcp = 5432 }

[[service]]
name = "etcd"
command = "etcd"
args = ["--name", "{name}", "--initial-cluster", "{all:%name=http://%ip:2380}"]
env = { ETCD_LOG_LEVEL = "warn" }
workdir = "{data}"
ready = { http = "http://{ip}:2379/health" }
ready_timeout = "1.5s"
after = ["db"]
stop_timeout = "5s"
binds = { "/var/lib/etcd" = "{data}" }
reset = ["etcdctl", "del", "--prefix", ""]
restart_with = ["db"]
config = { path = "{data}/etcd.toml", format = "toml" }
"#,
    )
    .unwrap();
    assert_eq!(spec.name, "etcd");
    assert_eq!(spec.nodes, ["node0", "node1", "node2"]);
    assert_eq!(spec.subnet, Some("10.77.0.0/24".parse().unwrap()));
    assert!(spec.ipv6 && spec.keep_data);
    assert_eq!(spec.subnet6, Some("fd00:77::/64".parse().unwrap()));
    assert_eq!(spec.run_root, Path::new("/tmp/nd"));
    assert_eq!(spec.url.as_ref().map(Template::source), Some("http://{ip}:2379/"));

    let [db, etcd] = &spec.services[..] else { panic!("two services") };
    assert_eq!(db.name, "db");
    assert_eq!(db.command.source(), "/usr/bin/db");
    assert_eq!(db.ready, Some(Probe::Tcp(5432)));
    let defaults = ServiceSpec::new("x", "x").unwrap();
    assert_eq!((db.ready_timeout, db.stop_timeout), (defaults.ready_timeout, defaults.stop_timeout));
    assert!(db.args.is_empty() && db.env.is_empty() && db.workdir.is_none() && db.binds.is_empty());

    assert_eq!(etcd.command.source(), "etcd");
    let args: Vec<_> = etcd.args.iter().map(Template::source).collect();
    assert_eq!(args, ["--name", "{name}", "--initial-cluster", "{all:%name=http://%ip:2380}"]);
    assert_eq!(etcd.env, [("ETCD_LOG_LEVEL".to_string(), Template::parse("warn").unwrap())]);
    assert_eq!(etcd.workdir.as_ref().map(Template::source), Some("{data}"));
    assert_eq!(etcd.ready, Some(Probe::Http(Template::parse("http://{ip}:2379/health").unwrap())));
    assert_eq!(etcd.ready_timeout, Duration::from_millis(1500));
    assert_eq!(etcd.after, ["db"]);
    assert_eq!(etcd.stop_timeout, Duration::from_secs(5));
    assert_eq!(etcd.binds, [(PathBuf::from("/var/lib/etcd"), Template::parse("{data}").unwrap())]);
    assert_eq!(etcd.reset.iter().map(Template::source).collect::<Vec<_>>(), ["etcdctl", "del", "--prefix", ""]);
    assert_eq!(etcd.restart_with, ["db"]);
    assert_eq!(etcd.config, Some((Template::parse("{data}/etcd.toml").unwrap(), Format::Toml)));
    assert!(db.reset.is_empty() && db.restart_with.is_empty());
}

#[test]
fn defaults_and_node_names() {
    let spec = parse_str("[network]\nnodes = [\"alpha\", \"beta\"]\n").unwrap();
    assert_eq!(spec.name, "test-net");
    assert_eq!(spec.nodes, ["alpha", "beta"]);
    assert_eq!(spec.subnet, None);
    assert!(!spec.ipv6 && !spec.keep_data);
    assert_eq!(spec.run_root, NetworkSpec::new("x", 1).run_root);
    assert!(spec.url.is_none() && spec.services.is_empty());
}

#[test]
fn errors_point_at_the_field() {
    // (manifest, line of the error, start of the message)
    const SVC: &str = "[network]\nnodes = 3\n\n[[service]]\nname = \"a\"\ncommand = \"true\"\n";
    let cases: &[(&str, usize, &str)] = &[
        ("[network]\nnodes = 3 x\n", 2, "string values must be quoted"),
        ("[network\nnodes = 3\n", 1, "unclosed table"),
        ("[network]\nnodes = 3\nnodes = 4\n", 3, "duplicate key"),
        ("[network]\nnodes = 3\ncolour = \"red\"\n", 3, "network.colour: unknown field `colour`"),
        ("[network]\n", 1, "network: missing field `nodes`"),
        ("[network]\nnodes = 3\nipv6 = \"yes\"\n", 3, "network.ipv6: invalid type"),
        (&format!("{SVC}colour = 1\n"), 7, "service[0].colour: unknown field `colour`"),
        (&format!("{SVC}ready = {{ htp = \"x\" }}\n"), 7, "service[0].ready.htp: unknown field `htp`"),
        (&format!("{SVC}ready = {{ tcp = 0 }}\n"), 7, "service[0].ready.tcp: invalid value: integer `0`"),
        (
            &format!("{SVC}ready_timeout = \"10 parsecs\"\n"),
            7,
            "service[0].ready_timeout: invalid duration: '10 parsecs' (use e.g. 500ms",
        ),
        (&format!("{SVC}stop_timeout = \"-5s\"\n"), 7, "service[0].stop_timeout: invalid duration: '-5s'"),
        (
            &format!("{SVC}args = [\"x\",\n  \"{{nope}}\"]\n"),
            8,
            "service[0].args[1]: invalid template '{nope}': unknown placeholder",
        ),
        (&format!("{SVC}env = {{ A = \"{{ip\" }}\n"), 7, "service[0].env.A: invalid template '{ip'"),
        (&format!("{SVC}binds = {{ \"/x\" = \"}}\" }}\n"), 7, "service[0].binds.\"/x\": invalid template"),
        (
            "[network]\nnodes = 3\n[[service]]\nname = \"a\"\ncommand = \"{x}\"\n",
            5,
            "service[0].command: invalid template '{x}'",
        ),
        (
            &format!("{SVC}\n[[service]]\nname = \"a\"\ncommand = \"true\"\n"),
            9,
            "service[1].name: duplicate service name 'a'",
        ),
        (
            &format!("{SVC}after = [\"db\"]\n"),
            7,
            "service[0].after: invalid service a: 'after' names 'db', which is no service of the spec",
        ),
        (
            &format!("{SVC}after = []\nrestart_with = [\"db\"]\n"),
            8,
            "service[0].restart_with: invalid service a: 'restart_with' names 'db'",
        ),
        (&format!("{SVC}ready = {{ http = \"http://{{ip}}/\", tcp = 80 }}\n"), 7, "service[0].ready: give one of http"),
        (&format!("{SVC}ready = {{}}\n"), 7, "service[0].ready: give one of http"),
        (
            &format!("{SVC}ready = {{ http = \"not a url\" }}\n"),
            7,
            "service[0].ready.http: invalid service a: ready.http: 'not a url' is not a URL to probe",
        ),
        (
            &format!("{SVC}args = [\"{{all:%foo}}\"]\n"),
            7,
            "service[0].args[0]: invalid template '{all:%foo}': unknown '%foo'",
        ),
        (
            &format!("{SVC}binds = {{ \"/\" = \"{{data}}\" }}\n"),
            7,
            "service[0].binds.\"/\": invalid service a: binds: the target / is the node's root",
        ),
        (
            &format!("{SVC}binds = {{ \"etc\" = \"{{data}}\" }}\n"),
            7,
            "service[0].binds.etc: invalid service a: binds: the target etc is relative",
        ),
        (
            "[network]\nnodes = 3\n[[service]]\nname = \"..\"\ncommand = \"true\"\n",
            4,
            "service[0].name: invalid service name: '..': ",
        ),
        (
            "[network]\nnodes = 3\n[[service]]\nname = \"tmp\"\ncommand = \"true\"\n",
            4,
            "service[0].name: invalid service name: 'tmp': `tmp` is the node's /tmp",
        ),
        (
            &format!("[network]\nnodes = 3\n[[service]]\nname = \"{}\"\ncommand = \"true\"\n", "x".repeat(65)),
            4,
            "service[0].name: invalid service name: 'xxx",
        ),
        (
            &format!("{SVC}after = [\"b\"]\n[[service]]\nname = \"b\"\ncommand = \"true\"\nafter = [\"a\"]\n"),
            7,
            "service[0].after: invalid service a: 'after' goes round in a circle: a waits for b waits for a",
        ),
        ("[network]\nnodes = 3\nrun_root = \"\"\n", 3, "network.run_root: invalid run_root: it is empty"),
        (
            "[network]\nnodes = 3\nrun_root = \"var/tmp\"\n",
            3,
            "network.run_root: invalid run_root: var/tmp is relative",
        ),
        (
            "[network]\nnodes = 3\nrun_root = \"/dev/null\"\n",
            3,
            "network.run_root: invalid run_root: /dev/null is not a directory",
        ),
        (
            "[network]\nnodes = 3\nsubnet = \"127.0.0.0/24\"\n",
            3,
            "network.subnet: invalid subnet: 127.0.0.0/24 is in the loopback",
        ),
        (
            "[network]\nnodes = 3\nsubnet = \"224.0.0.0/24\"\n",
            3,
            "network.subnet: invalid subnet: 224.0.0.0/24 is in the multicast",
        ),
        (
            "[network]\nnodes = 3\nsubnet = \"169.254.0.0/24\"\n",
            3,
            "network.subnet: invalid subnet: 169.254.0.0/24 is in the link-local",
        ),
        (
            "[network]\nnodes = 3\nsubnet = \"0.0.0.0/24\"\n",
            3,
            "network.subnet: invalid subnet: 0.0.0.0/24 is in the \"this network\"",
        ),
        (
            "[network]\nnodes = 3\nsubnet = \"255.255.255.0/24\"\n",
            3,
            "network.subnet: invalid subnet: 255.255.255.0/24 is in the reserved",
        ),
        (
            &format!("{SVC}config = {{ path = \"x.yaml\", format = \"yaml\" }}\n"),
            7,
            "service[0].config.format: unknown variant `yaml`, expected `toml` or `json`",
        ),
        (
            &format!("{SVC}config = {{ path = \"{{nope}}\", format = \"json\" }}\n"),
            7,
            "service[0].config.path: invalid template '{nope}'",
        ),
        ("[network]\nname = \"a b\"\nnodes = 3\n", 2, "network.name: invalid network name: 'a b'"),
        ("[network]\nnodes = 0\n", 2, "network.nodes: invalid nodes: 0 nodes"),
        ("[network]\nnodes = 10001\n", 2, "network.nodes: 10001 nodes: a network has 1 to 10000"),
        ("[network]\nnodes = -1\n", 2, "network.nodes: -1 nodes"),
        ("[network]\nnodes = \"3\"\n", 2, "network.nodes: expected a node count"),
        ("[network]\nnodes = [\"a\", 1]\n", 2, "network.nodes: node names must be strings"),
        ("[network]\nnodes = [\"a\", \"a\"]\n", 2, "network.nodes: duplicate node name 'a'"),
        ("[network]\nnodes = 3\nsubnet = \"10.0.0/24\"\n", 3, "network.subnet: invalid subnet: '10.0.0/24'"),
        ("[network]\nnodes = 10\nsubnet = \"10.1.0.0/29\"\n", 3, "network.subnet: subnet: 10.1.0.0/29 holds 5 nodes"),
        ("[network]\nnodes = 3\nurl = \"http://{ipp}/\"\n", 3, "network.url: invalid template"),
        (
            "[network]\nnodes = 3\nipv6 = true\nsubnet6 = \"fd00::/96\"\n",
            4,
            "network.subnet6: invalid subnet6: prefix /96 must be from /8 to /64",
        ),
        (
            "[network]\nnodes = 3\nsubnet6 = \"fd00::/64\"\n",
            3,
            "network.subnet6: invalid subnet6: fd00::/64 is given but the network has no IPv6",
        ),
        (
            "[network]\nnodes = 3\nipv6 = true\nsubnet6 = \"ff02::/64\"\n",
            4,
            "network.subnet6: invalid subnet6: ff02::/64 is in the multicast",
        ),
        ("[[service]]\nname = \"a\"\ncommand = \"true\"\n", 1, "missing field `network`"),
    ];
    assert_errors(cases);
}

/// Asserts that each manifest fails on the line given, with a message that starts so.
fn assert_errors(cases: &[(&str, usize, &str)]) {
    for (text, line, phrase) in cases {
        match parse_str(text) {
            Err(Error::Manifest { path, line: got, message, .. }) => {
                assert_eq!(path, Path::new("/etc/nets/test-net.toml"));
                assert!(message.starts_with(phrase), "{text:?}: {message:?} does not start with {phrase:?}");
                assert_eq!(got, *line, "{text:?}: {message}");
            }
            other => panic!("{text:?}: expected a manifest error, got {other:?}"),
        }
    }
}

#[test]
fn conditions() {
    let spec = parse_str(
        r#"
[network]
nodes = 3
partition = [["node0"], ["node1", "2"]]

[[qos]]
node = "node1"
direction = "send"
delay = "100ms"
jitter = "10ms"
correlation = "25%"
distribution = "normal"
loss = "1%"
loss_correlation = "25%"
duplicate = "1%"
duplicate_correlation = "5%"
corrupt = "0.1%"
corrupt_correlation = "6%"
reorder = "10%"
reorder_correlation = "7%"
gap = 5
rate = "10mbit"
limit = 1000

[[qos]]
from = "node0"
to = "node2"
both_ways = true
delay = "50ms"

[[qos]]
from = "0"
to = "node1"
loss = "2%"

[[qos]]
node = "node2"
rate = "1mbit"

[[clock]]
node = "node2"
offset = "+1h"
boottime = "-10s"
tz = "Asia/Tokyo"

[[clock]]
node = "1"
monotonic = "+2m"
"#,
    )
    .unwrap();
    let ms = Duration::from_millis;
    let chance = |percent, correlation| Chance { percent: Percent(percent), correlation: Percent(correlation) };
    let full = Qos {
        delay: ms(100),
        jitter: ms(10),
        delay_correlation: Percent(25.0),
        distribution: crate::shaping::Distribution::Normal,
        loss: Loss::Random { percent: Percent(1.0), correlation: Percent(25.0) },
        duplicate: chance(1.0, 5.0),
        corrupt: chance(0.1, 6.0),
        reorder: Reorder { percent: Percent(10.0), correlation: Percent(7.0), gap: 5 },
        rate: Some("10mbit".parse().unwrap()),
        limit: Some(1000),
    };
    let [node, pair, one_way, default] = &spec.conditions.qos[..] else { panic!("four rules") };
    assert!(*node == QosRule { target: QosTarget::node("node1", Direction::Send), qos: full });
    let delay = Qos { delay: ms(50), ..Qos::default() };
    assert!(*pair == QosRule { target: QosTarget::both_ways("node0", "node2"), qos: delay });
    let loss = Qos { loss: Loss::Random { percent: Percent(2.0), correlation: Percent::ZERO }, ..Qos::default() };
    assert!(*one_way == QosRule { target: QosTarget::pair("0", "node1"), qos: loss });
    let rate = Qos { rate: Some("1mbit".parse().unwrap()), ..Qos::default() };
    assert!(*default == QosRule { target: QosTarget::node("node2", Direction::Both), qos: rate });

    let hour: Offset = "+1h".parse().unwrap();
    let node2 = ClockSkew { boottime: "-10s".parse().unwrap(), ..ClockSkew::offset(hour) }.tz("Asia/Tokyo");
    let node1 = ClockSkew { monotonic: "+2m".parse().unwrap(), ..ClockSkew::default() };
    assert_eq!(spec.conditions.clocks, [("node2".to_string(), node2), ("1".to_string(), node1)]);
    assert_eq!(spec.conditions.partition, Some(vec![vec!["node0".to_string()], vec!["node1".into(), "2".into()]]));
    spec.validate().unwrap();

    let plain = parse_str("[network]\nnodes = 2\n").unwrap();
    assert!(
        plain.conditions.qos.is_empty() && plain.conditions.clocks.is_empty() && plain.conditions.partition.is_none()
    );
}

#[test]
fn condition_errors_point_at_the_field() {
    // [[qos]] and [[clock]] tables start on line 4, their first field is on line 5.
    const QOS: &str = "[network]\nnodes = 3\n\n[[qos]]\nnode = \"node1\"\n";
    const PAIR: &str = "[network]\nnodes = 3\n\n[[qos]]\nfrom = \"node0\"\nto = \"node1\"\n";
    const CLOCK: &str = "[network]\nnodes = 3\n\n[[clock]]\nnode = \"node1\"\n";
    let cases: &[(&str, usize, &str)] = &[
        (
            &format!("{PAIR}node = \"node2\"\n"),
            4,
            "qos[0]: give either node = \"NAME\" or both from = \"NAME\" and to = \"NAME\"",
        ),
        ("[network]\nnodes = 3\n\n[[qos]]\nfrom = \"node0\"\n", 4, "qos[0]: give either node"),
        ("[network]\nnodes = 3\n\n[[qos]]\ndelay = \"1ms\"\n", 4, "qos[0]: give either node"),
        (
            &format!("{QOS}loss = \"150%\"\n"),
            6,
            "qos[0].loss: invalid percentage: 150% is out of range (allowed: 0% to 100%)",
        ),
        (
            &format!("{QOS}delay = \"1ms\"\njitter = \"1ms\"\ndistribution = \"gaussian\"\n"),
            8,
            "qos[0].distribution: invalid distribution: 'gaussian' (allowed: uniform, normal",
        ),
        (&format!("{QOS}delay = \"1 ms\"\n"), 6, "qos[0].delay: invalid duration: '1 ms'"),
        (&format!("{QOS}rate = \"10mb\"\n"), 6, "qos[0].rate: invalid rate: '10mb'"),
        (&format!("{QOS}delya = \"1ms\"\n"), 6, "qos[0].delya: unknown field `delya`"),
        (&format!("{QOS}direction = \"sideways\"\n"), 6, "qos[0].direction: unknown variant `sideways`"),
        (&format!("{QOS}gap = -1\n"), 6, "qos[0].gap: invalid value"),
        (&format!("{QOS}both_ways = true\n"), 6, "qos[0].both_ways: only a pair (from, to) goes both ways"),
        (&format!("{PAIR}direction = \"send\"\n"), 7, "qos[0].direction: only for a node"),
        ("[network]\nnodes = 3\n\n[[qos]]\nnode = \"node9\"\n", 5, "qos[0].node: unknown node 'node9'"),
        (
            "[network]\nnodes = 3\n\n[[qos]]\nnode = \"3\"\n",
            5,
            "qos[0].node: unknown node '3' (the network has node0, node1, node2, or an index below 3)",
        ),
        ("[network]\nnodes = 3\n\n[[qos]]\nfrom = \"node0\"\nto = \"x\"\n", 6, "qos[0].to: unknown node 'x'"),
        (
            "[network]\nnodes = 3\n\n[[qos]]\nfrom = \"node1\"\nto = \"1\"\n",
            4,
            "qos[0]: invalid qos: node1 and 1 are the same node",
        ),
        (&format!("{QOS}jitter = \"10ms\"\n"), 4, "qos[0]: invalid jitter: 10ms needs a delay"),
        (&format!("{QOS}limit = 0\n"), 4, "qos[0]: invalid limit: must be at least 1 packet"),
        (
            &format!("{QOS}\n[[qos]]\nnode = \"node0\"\nreorder = \"5%\"\n"),
            7,
            "qos[1]: invalid reorder: reorder needs a delay",
        ),
        (
            &format!("{CLOCK}offset = \"+1 fortnight\"\n"),
            6,
            "clock[0].offset: invalid clock offset: '+1 fortnight': use a signed duration",
        ),
        (&format!("{CLOCK}boottime = \"1h+\"\n"), 6, "clock[0].boottime: invalid clock offset: '1h+'"),
        (
            &format!("{CLOCK}tz = \"Mars/Olympus_Mons\"\n"),
            6,
            "clock[0].tz: invalid time zone: 'Mars/Olympus_Mons' is not a zone of /usr/share/zoneinfo",
        ),
        (&format!("{CLOCK}tz = \"../../etc/passwd\"\n"), 6, "clock[0].tz: invalid time zone"),
        (&format!("{CLOCK}tz = \"/etc/passwd\"\n"), 6, "clock[0].tz: invalid time zone: '/etc/passwd' is not a zone"),
        (&format!("{CLOCK}tz = \"Asia\"\n"), 6, "clock[0].tz: invalid time zone: 'Asia' is not a zone"),
        (
            &format!("{CLOCK}monotonic = \"+100000d\"\n"),
            4,
            "clock[0]: invalid clock offset: +100000d for CLOCK_MONOTONIC",
        ),
        (
            &format!("{CLOCK}realtime = \"-100000d\"\n"),
            4,
            "clock[0]: invalid clock offset: -100000d for CLOCK_REALTIME",
        ),
        (
            &format!("{CLOCK}offset = \"+200000d\"\n"),
            6,
            "clock[0].offset: invalid clock offset: '+200000d' is too long",
        ),
        ("[network]\nnodes = 3\n\n[[clock]]\nnode = \"nodeX\"\n", 5, "clock[0].node: unknown node 'nodeX'"),
        ("[network]\nnodes = 3\n\n[[clock]]\ntz = \"UTC\"\n", 4, "clock[0]: missing field `node`"),
        (&format!("{CLOCK}offset = 5\n"), 6, "clock[0].offset: invalid type"),
        (
            "[network]\nnodes = 3\npartition = [[\"node0\"],\n  [\"node1\", \"nodeX\"]]\n",
            4,
            "network.partition[1][1]: unknown node 'nodeX'",
        ),
        (
            "[network]\nnodes = 3\npartition = [[\"node0\"], [\"0\"]]\n",
            3,
            "network.partition: invalid partition: node 0 is in two groups",
        ),
        ("[network]\nnodes = 3\npartition = [\"node0\"]\n", 3, "network.partition[0]: invalid type"),
    ];
    assert_errors(cases);
}

#[test]
fn services_may_wait_for_ones_defined_later() {
    let spec = parse_str(
        "[network]\nnodes = 1\n[[service]]\nname = \"app\"\ncommand = \"true\"\nafter = [\"db\"]\nrestart_with = [\"db\"]\n\
         [[service]]\nname = \"db\"\ncommand = \"true\"\n",
    )
    .unwrap();
    assert_eq!(spec.levels().unwrap(), [vec![1], vec![0]], "db first, then app");
}

#[test]
fn column_and_display() {
    let err =
        parse_str("[network]\nnodes = 3\n\n[[service]]\nname = \"a\"\ncommand = \"true\"\nstop_timeout = \"5 s\"\n");
    let err = err.unwrap_err();
    assert!(matches!(err, Error::Manifest { line: 7, column: 16, .. }), "{err:?}");
    assert!(err.to_string().starts_with("/etc/nets/test-net.toml:7:16: service[0].stop_timeout: "), "{err}");
}

#[test]
fn load_names_the_file() {
    let err = load(Path::new("/nonexistent/net.toml")).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/net.toml"), "{err}");
}

#[test]
fn lossy_example() {
    let spec = parse(include_str!("../../examples/lossy.toml"), Path::new("examples/lossy.toml")).unwrap();
    assert_eq!((spec.name.as_str(), spec.nodes.len()), ("lossy", 3));
    let node2 = Qos {
        delay: Duration::from_millis(100),
        loss: Loss::Random { percent: Percent(1.0), correlation: Percent::ZERO },
        ..Qos::default()
    };
    assert!(spec.conditions.qos[0] == QosRule { target: QosTarget::node("node2", Direction::Both), qos: node2 });
    assert!(matches!(&spec.conditions.qos[1].target, QosTarget::Pair { both_ways: true, .. }));
    assert_eq!(spec.conditions.clocks.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["node1"]);
}

#[test]
fn etcd_example() {
    let spec = parse(include_str!("../../examples/etcd.toml"), Path::new("examples/etcd.toml")).unwrap();
    spec.validate().unwrap();
    assert_eq!(spec.name, "etcd");
    assert_eq!(spec.nodes.len(), 3);
    let [etcd] = &spec.services[..] else { panic!("one service") };
    assert!(matches!(etcd.ready, Some(Probe::Http(_))));

    let nodes: Vec<_> = (0..3u8)
        .map(|i| NodeVars { name: format!("node{i}"), ip: Ipv4Addr::new(10, 0, 0, 2 + i), ip6: None })
        .collect();
    let vars = Vars {
        index: 1,
        nodes: &nodes,
        data: Path::new("/run/node1/etcd"),
        dir: Path::new("/run/node1"),
        network: &spec.name,
        subnet: "10.0.0.0/24",
        host: Ipv4Addr::new(10, 0, 0, 1),
        subnet6: None,
    };
    let args: Vec<_> = etcd.args.iter().map(|a| a.render(&vars)).collect();
    let cluster = args.iter().position(|a| a == "--initial-cluster").expect("--initial-cluster");
    assert_eq!(args[cluster + 1], "node0=http://10.0.0.2:2380,node1=http://10.0.0.3:2380,node2=http://10.0.0.4:2380");
    assert!(args.windows(2).any(|w| w == ["--advertise-client-urls", "http://10.0.0.3:2379"]));
}

#[test]
fn nemesis_table() {
    let spec = parse(include_str!("../../examples/etcd.toml"), Path::new("examples/etcd.toml")).unwrap();
    let nemesis = spec.nemesis.expect("etcd.toml has a [nemesis]");
    assert_eq!((nemesis.seed, nemesis.faults.len(), nemesis.length), (7, 6, std::time::Duration::from_secs(60)));
    assert_eq!(nemesis.interval.to_string(), "2s..5s");
    let text =
        "[network]\nnodes = 2\n\n[nemesis]\nseed = 1\nfaults = [\"kill\", \"pause\"]\nkill_services = [\"db\"]\n";
    let nemesis = parse(text, Path::new("k.toml")).unwrap().nemesis.unwrap();
    assert_eq!((nemesis.services, nemesis.kill_services), (None, Some(vec!["db".to_string()])));
    assert_errors(&[
        (
            "[network]\nnodes = 2\n\n[nemesis]\nseed = 1\nfaults = [\"boom\"]\n",
            6,
            "nemesis.faults: invalid fault kind: 'boom'",
        ),
        (
            "[network]\nnodes = 2\n\n[nemesis]\nseed = 1\nfaults = [\"kill\"]\ninterval = \"5s..2s\"\n",
            7,
            "nemesis.interval: invalid range: range 5s..2s is written backwards",
        ),
        ("[network]\nnodes = 2\n\n[nemesis]\nseed = 1\nfaults = []\n", 4, "nemesis: invalid nemesis: no fault kinds"),
    ]);
}

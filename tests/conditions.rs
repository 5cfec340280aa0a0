//! Conditions in a spec, set up right after bring-up and before services start: clocks and
//! a partition on any kernel, seen by the nodes and by services started afterwards; shaping,
//! which fails without netem (the host's kernel) and leaves nothing, and works in the guest
//! that `scripts/test` boots (NETDRIVER_GUEST); bad values, refused before anything is made.

use std::path::Path;
use std::time::Duration;

use crate::common::{
    assert_failed_bringup_left_nothing, exec, exec_ok, shell_service, teardown, up, uplinks, wait_until,
};
use netdriver::spec::{Conditions, QosRule, QosTarget};
use netdriver::{ClockSkew, Direction, Error, Network, NetworkSpec, Node, Offset, Qos};

/// The host's uptime (CLOCK_BOOTTIME), in seconds.
fn host_uptime() -> f64 {
    uptime(&std::fs::read_to_string("/proc/uptime").unwrap())
}

/// The first field of `/proc/uptime`'s text.
fn uptime(text: &str) -> f64 {
    text.split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("not an uptime: {text:?}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 2.0
}

/// Whether one ping from `from` to `to` is answered.
fn pings(from: &Node, to: &Node) -> bool {
    exec(from, &["ping", "-c", "1", "-W", "1", &to.ip().to_string()]).status.success()
}

#[test]
fn clocks_and_partition_are_set_before_services_start() {
    // A service that records the clock and time zone it starts with, then idles.
    let watch = shell_service(
        "watch",
        "cut -d' ' -f1 /proc/uptime > uptime.new && date +%Z > tz && mv uptime.new uptime && exec sleep 600",
    );
    let mut spec = NetworkSpec::new("t-cond-clock", 3).service(watch);
    let skew =
        ClockSkew { boottime: Offset::ahead(Duration::from_secs(3600)), ..ClockSkew::default() }.tz("Asia/Tokyo");
    spec.conditions = Conditions {
        clocks: vec![("node1".into(), skew.clone())],
        partition: Some(vec![vec!["node0".into()], vec!["node1".into(), "node2".into()]]),
        ..Conditions::default()
    };
    let network = up(&spec);
    let [node0, node1, node2] = network.nodes() else { panic!("three nodes") };

    assert_eq!(node1.clock(), skew);
    assert_eq!(exec_ok(node1, &["date", "+%Z"]).trim(), "JST");
    let node_uptime = uptime(&exec_ok(node1, &["cut", "-d ", "-f1", "/proc/uptime"]));
    assert!(close(node_uptime, host_uptime() + 3600.0), "node1's uptime {node_uptime}, the host's {}", host_uptime());
    assert!(close(uptime(&exec_ok(node0, &["cat", "/proc/uptime"])), host_uptime()), "node0's clock moved");

    assert_eq!(network.cuts().len(), 2, "{:?}", network.cuts());
    assert!(network.is_cut("node0", "node1").unwrap() && network.is_cut("node1", "node0").unwrap());
    assert!(!pings(node0, node1), "node0 reaches node1 across the partition");
    assert!(pings(node1, node2), "node1 cannot reach node2 in its own group");

    network.start().unwrap();
    let service = node1.service("watch").unwrap();
    let file = |name: &str| std::fs::read_to_string(service.data_dir().join(name)).unwrap_or_default();
    wait_until("the service records its clock", Duration::from_secs(5), || !file("uptime").is_empty());
    let seen = uptime(&file("uptime"));
    assert!(close(seen, host_uptime() + 3600.0), "the service saw uptime {seen}, the host has {}", host_uptime());
    assert_eq!(file("tz").trim(), "JST");
    teardown(network);
}

#[test]
fn shaping_needs_netem_and_a_failure_leaves_nothing() {
    let mut spec =
        netdriver::manifest::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lossy.toml")).unwrap();
    spec.name = "t-cond-qos".into();
    let guest = std::env::var_os("NETDRIVER_GUEST").is_some();
    let before = uplinks();
    match Network::up(&spec) {
        Ok(network) => {
            // node2 delays what it sends and what it receives by 100 ms each.
            let [node0, node1, node2] = network.nodes() else { panic!("three nodes") };
            let out = exec_ok(node0, &["ping", "-c", "5", "-i", "0.2", "-W", "2", &node2.ip().to_string()]);
            let rtts: Vec<f64> =
                out.lines().filter_map(|l| l.split("time=").nth(1)?.split_whitespace().next()?.parse().ok()).collect();
            assert!(!rtts.is_empty() && rtts.iter().all(|&ms| ms >= 195.0), "round trips to node2: {rtts:?} ms");
            assert_eq!(exec_ok(node1, &["date", "+%Z"]).trim(), "JST");
            teardown(network);
        }
        Err(Error::KernelFeature { feature, fix }) if !guest => {
            assert!(feature.contains("netem") && fix.contains("modprobe sch_netem"), "{feature}: {fix}");
            assert_failed_bringup_left_nothing(&spec.name, &before);
        }
        Err(e) => panic!("bringing up {} (guest: {guest}): {e}", spec.name),
    }
}

#[test]
fn bad_conditions_fail_before_anything_is_made() {
    let run_root = Path::new("/var/tmp").join(format!("netdriver-t-cond-bad-{}", std::process::id()));
    let mut spec = NetworkSpec { run_root: run_root.clone(), ..NetworkSpec::new("t-cond-bad", 3) };
    let lossy = Qos {
        loss: netdriver::Loss::Random {
            percent: netdriver::Percent(150.0),
            correlation: netdriver::Percent::default(),
        },
        ..Qos::default()
    };
    let bad = [
        (
            QosRule { target: QosTarget::node("node1", Direction::Both), qos: lossy },
            "invalid loss: 150% is out of range",
        ),
        (QosRule { target: QosTarget::node("node7", Direction::Send), qos: Qos::default() }, "unknown node 'node7'"),
        (QosRule { target: QosTarget::pair("node2", "2"), qos: Qos::default() }, "same node"),
    ];
    let before = uplinks();
    for (rule, phrase) in bad {
        spec.conditions.qos = vec![rule];
        let err = spec.validate().unwrap_err();
        assert!(err.to_string().contains(phrase), "{err}");
        let err = Network::up(&spec).map(|n| n.id().to_string()).unwrap_err();
        assert!(err.to_string().contains(phrase), "{err}");
    }
    spec.conditions = Conditions {
        clocks: vec![("node0".into(), ClockSkew::default().tz("Mars/Olympus_Mons"))],
        ..Conditions::default()
    };
    assert!(Network::up(&spec).map(|n| n.id().to_string()).unwrap_err().to_string().contains("invalid time zone"));
    spec.conditions =
        Conditions { partition: Some(vec![vec!["node0".into()], vec!["0".into()]]), ..Conditions::default() };
    assert!(Network::up(&spec)
        .map(|n| n.id().to_string())
        .unwrap_err()
        .to_string()
        .contains("node 0 is in two groups"));

    assert!(!run_root.exists(), "a refused spec made its run root {}", run_root.display());
    assert_failed_bringup_left_nothing(&spec.name, &before);
}

//! A real 3-member etcd cluster from examples/etcd.toml: a write made while one member is
//! stopped reaches that member once it is started again; a fault schedule run from the
//! command line (reproducible, refused on bad input, stopped by Ctrl-C) leaves it whole.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{
    exec, exec_ok, nd, signal, stderr, stdout, teardown, up, up_cli, wait_exit, wait_until, write_manifest, BIN,
};
use netdriver::{EventKind, Node};

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

/// `netdriver --network NAME ARGS...`.
fn on(name: &str, args: &[&str]) -> std::process::Output {
    nd(&[&["--network", name][..], args].concat())
}

#[test]
fn a_schedule_from_the_command_line_leaves_a_cluster_that_agrees() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/etcd.toml")).unwrap();
    let manifest = write_manifest("t-etcd-nem", &text.replace("name = \"etcd\"", "name = \"t-etcd-nem\""));
    let (mut child, id) = up_cli(&manifest);
    let net = "t-etcd-nem";

    // Reproducible: one seed gives one plan, another seed another; the manifest's [nemesis]
    // is the schedule given by flags.
    let flags = ["--faults", "kill,pause,stop,partition,block,clock", "--interval", "2s..5s", "--hold", "1s..3s"];
    let plan = |seed: &str| {
        stdout(&on(net, &[&["nemesis", "--plan", "--seed", seed], &flags[..], &["--for", "60s"]].concat()))
    };
    let (first, again, other) = (plan("7"), plan("7"), plan("8"));
    assert!(first.lines().count() >= 5, "{first}");
    assert_eq!(first, again);
    assert_ne!(first, other);
    assert_eq!(stdout(&on(net, &["nemesis", "--plan"])), first, "the manifest's [nemesis] is seed 7");

    // Bad input, refused before anything is applied.
    let refused = [
        (vec!["nemesis", "--seed", "1", "--faults", "kill,boom"], "invalid fault kind: 'boom'"),
        (vec!["nemesis", "--seed", "1", "--faults", "kill", "--interval", "5s..2s"], "written backwards: write 2s..5s"),
        (vec!["nemesis", "--seed", "1", "--faults", "qos"], "sch_netem"),
    ];
    for (args, message) in refused {
        let out = on(net, &args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
    }
    let nowhere = on("no-such-network", &["nemesis", "--seed", "1", "--faults", "kill"]);
    assert!(nowhere.status.code() == Some(1) && stderr(&nowhere).contains("no-such-network"), "{}", stderr(&nowhere));
    let run_dir = crate::common::run_dir_of(&id);
    let events = || netdriver::events::read(&run_dir.join(netdriver::events::FILE)).unwrap();
    assert!(!events().iter().any(|e| e.kind == EventKind::FaultStart), "a refused schedule applied a fault");

    // A short schedule to its end: every fault undone, the cluster whole again.
    let short = ["--seed", "3", "--interval", "1s..2s", "--hold", "0.5s..1s", "--for", "10s"];
    let ran = on(net, &[&["nemesis", "--faults", "kill,pause,stop,partition,block,clock"], &short[..]].concat());
    assert!(ran.status.success(), "{}", stderr(&ran));
    let starts = events().iter().filter(|e| e.kind == EventKind::FaultStart).count();
    assert!(starts >= 3 && starts == events().iter().filter(|e| e.kind == EventKind::FaultEnd).count());

    // Ctrl-C of a long schedule stops it at once, the fault under way undone.
    let mut long = Command::new(BIN)
        .args(["--network", net, "nemesis", "--seed", "5", "--faults", "partition,block", "--for", "60s"])
        .args(["--interval", "1s..1s", "--hold", "30s..30s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the long schedule's first fault", Duration::from_secs(15), || {
        events().iter().filter(|e| e.kind == EventKind::FaultStart).count() > starts
    });
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(long.id() as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    wait_exit(&mut long, Duration::from_secs(10));
    wait_until("the schedule's end after Ctrl-C", Duration::from_secs(10), || {
        events().iter().filter(|e| e.kind == EventKind::NemesisEnd).count() == 2
    });
    assert!(!stdout(&on(net, &["status"])).contains("cut"), "Ctrl-C left a cut");

    // A key written through each member reads back on all.
    let status: serde_json::Value = serde_json::from_slice(&on(net, &["status", "--json"]).stdout).unwrap();
    let ips: Vec<String> =
        status["nodes"].as_array().unwrap().iter().map(|n| n["ip"].as_str().unwrap().to_string()).collect();
    for (i, ip) in ips.iter().enumerate() {
        let endpoint = format!("http://{ip}:2379");
        wait_until(&format!("a put through node{i}"), Duration::from_secs(30), || {
            on(
                net,
                &["exec", &format!("node{i}"), "--", "etcdctl", "--endpoints", &endpoint, "put", &format!("k{i}"), "v"],
            )
            .status
            .success()
        });
    }
    for i in 0..ips.len() {
        for k in 0..ips.len() {
            wait_until(&format!("node{i} reads k{k}"), Duration::from_secs(10), || {
                let get = ["exec", &format!("node{i}"), "--", "etcdctl", "--endpoints", "http://127.0.0.1:2379", "get"];
                stdout(&on(net, &[&get[..], &[&format!("k{k}"), "--print-value-only"]].concat())).trim() == "v"
            });
        }
    }
    signal(&child.0, nix::sys::signal::Signal::SIGTERM);
    assert!(wait_exit(&mut child.0, Duration::from_secs(30)).success());
    std::fs::remove_file(manifest).unwrap();
}

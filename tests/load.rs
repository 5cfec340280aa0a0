//! Load on a controller: a thousand stop/start cycles leave its descriptors, threads and memory
//! as they were after the first fifty, and fifty command-line clients at once are all answered
//! right. Counts are bounded; timings and figures are printed.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use netdriver::control::Client;
use netdriver::Op;
use nix::sys::signal::Signal;

use crate::common::{nd, signal, stderr, stdout, up_cli, wait_exit, wait_no_leftovers, write_manifest, BIN};

/// A service that exits at once on SIGTERM.
const APP: &str = "[[service]]\nname = \"app\"\ncommand = \"sleep\"\nargs = [\"1000\"]\nstop_timeout = \"5s\"\n";

/// Open descriptors, threads and resident memory (KiB) of process `pid`.
/// The controller's descriptors, threads and resident set, at rest: the fewest of a few looks
/// 100 ms apart (a connection's thread or descriptor may still be going away after its answer;
/// a leak stays in every look).
fn usage(pid: u32) -> (usize, usize, u64) {
    (0..5)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(100));
            look(pid)
        })
        .reduce(|a, b| (a.0.min(b.0), a.1.min(b.1), a.2.min(b.2)))
        .expect("five looks")
}

fn look(pid: u32) -> (usize, usize, u64) {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        let line = status.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    (fds, field("Threads:") as usize, field("VmRSS:"))
}

#[test]
fn a_thousand_stop_start_cycles_leave_the_controller_as_it_was() {
    let m = write_manifest("load-cycles", &format!("[network]\nname = \"load-cycles\"\nnodes = 1\n{APP}"));
    let (mut child, id) = up_cli(&m);
    let client = Client::find(Some(&id)).unwrap();
    let cycle = || {
        client.op(Op::Stop, "node0/app").unwrap();
        client.op(Op::Start, "node0/app").unwrap();
    };
    (0..50).for_each(|_| cycle());
    let after_50 = usage(child.0.id());
    let start = Instant::now();
    (50..1000).for_each(|_| cycle());
    let took = start.elapsed();
    let after_1000 = usage(child.0.id());
    eprintln!(
        "measured: 950 stop/start cycles in {took:?} ({:?} a cycle); controller after 50 cycles: {} fds, {} threads, \
         {} KiB RSS; after 1000: {} fds, {} threads, {} KiB RSS",
        took / 950,
        after_50.0,
        after_50.1,
        after_50.2,
        after_1000.0,
        after_1000.1,
        after_1000.2
    );
    assert_eq!((after_1000.0, after_1000.1), (after_50.0, after_50.1), "descriptors or threads grew");
    assert!(after_1000.2 <= after_50.2 + 1024, "resident memory grew from {} to {} KiB", after_50.2, after_1000.2);
    let status = stdout(&nd(&["--network", &id, "status"]));
    assert_eq!(status.matches(" running ").count(), 1, "{status}");
    signal(&child.0, Signal::SIGTERM);
    assert!(wait_exit(&mut child.0, Duration::from_secs(30)).success());
    wait_no_leftovers(&id);
}

#[test]
fn fifty_clients_at_once_are_all_answered() {
    let m = write_manifest("load-clients", &format!("[network]\nname = \"load-clients\"\nnodes = 5\n{APP}"));
    let (mut child, id) = up_cli(&m);
    let spawn = |args: &[&str]| -> Child {
        Command::new(BIN)
            .arg("--network")
            .arg(&id)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let start = Instant::now();
    let mut clients: Vec<(String, Child)> = Vec::new();
    for i in 0..50 {
        let node = format!("node{}", i % 5);
        let (what, args): (String, Vec<String>) = match i % 5 {
            0 | 1 => ("status".into(), vec!["status".into(), "--json".into()]),
            2 | 3 => (format!("exec {node}"), vec!["exec".into(), node.clone(), "--".into(), "hostname".into()]),
            _ => (format!("restart {node}"), vec!["restart".into(), format!("{node}/app")]),
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        clients.push((what, spawn(&args)));
    }
    for (what, client) in clients {
        let out = client.wait_with_output().unwrap();
        assert!(out.status.success(), "{what}: {}", stderr(&out));
        if what == "status" {
            let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(json["nodes"].as_array().map(Vec::len), Some(5), "{what}: {json}");
        } else if let Some(node) = what.strip_prefix("exec ") {
            assert_eq!(stdout(&out).trim(), node, "{what}");
        }
    }
    let took = start.elapsed();
    let status = stdout(&nd(&["--network", &id, "status"]));
    assert_eq!(status.matches(" running ").count(), 5, "{status}");
    eprintln!("measured: 50 clients at once (20 status, 20 exec, 10 restart) all answered in {took:?}");
    signal(&child.0, Signal::SIGTERM);
    assert!(wait_exit(&mut child.0, Duration::from_secs(30)).success());
    wait_no_leftovers(&id);
}

//! The timeline of a run: every change, whoever made it, and every service state change the
//! network notices, in `<run_dir>/events.jsonl`, kept after teardown; `netdriver events`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{manifest, nd, shell_service, signal, stderr, stdout, up, up_cli, wait_until, BIN};
use netdriver::events::{self, acting_as};
use netdriver::{Actor, ClockSkew, Direction, Event, EventKind, NetworkSpec, Offset, Probe, Qos, QosTarget};

/// The events of `kind` (on `node`/`service` when given).
fn of<'a>(events: &'a [Event], kind: EventKind, node: Option<&str>, service: Option<&str>) -> Vec<&'a Event> {
    events
        .iter()
        .filter(|e| e.kind == kind)
        .filter(|e| node.is_none_or(|n| e.node.as_deref() == Some(n)))
        .filter(|e| service.is_none_or(|s| e.service.as_deref() == Some(s)))
        .collect()
}

#[test]
fn every_change_and_state_change_is_on_the_timeline_and_stays() {
    let web = shell_service("web", "exec python3 -m http.server 8000 --bind {ip}")
        .ready(Probe::Tcp(8000), Duration::from_secs(20));
    // Restarted by a rule whenever web starts again.
    let client = shell_service("client", "exec sleep 1000").after("web").restart_with("web");
    // Exits on its own, with a status, a moment after it starts.
    let crasher = shell_service("crasher", "sleep 0.5; exit 3");
    let network = up(&NetworkSpec::new("t-events", 2).service(web).service(client).service(crasher));
    network.start().unwrap();
    let node0 = &network.nodes()[0];
    wait_until("the crasher's exit is noticed", Duration::from_secs(10), || {
        !of(&network.events().unwrap(), EventKind::Exited, Some("node0"), Some("crasher")).is_empty()
    });

    node0.apply(netdriver::Op::Stop, Some("web")).unwrap();
    node0.apply(netdriver::Op::Start, Some("web")).unwrap();
    node0.apply(netdriver::Op::Pause, Some("client")).unwrap();
    node0.apply(netdriver::Op::Resume, Some("client")).unwrap();
    node0.apply(netdriver::Op::Kill, Some("client")).unwrap();
    acting_as(Actor::Nemesis, || network.partition([["node0"]])).unwrap();
    network.block("node1", "node0").unwrap();
    network.heal().unwrap();
    node0.configure_clock(ClockSkew::offset("+30s".parse::<Offset>().unwrap()), false).unwrap();
    let shaped = network.configure_qos(&QosTarget::node("node1", Direction::Both), Qos::default());
    shaped.unwrap();
    let run_dir = network.run_dir().to_path_buf();
    network.down().unwrap();

    // Kept after teardown, in the run directory, whole lines only.
    let events = events::read(&run_dir.join(events::FILE)).unwrap();
    assert_eq!(events.first().map(|e| e.kind), Some(EventKind::Up), "{events:#?}");
    assert_eq!(events.first().unwrap().details["nodes"], 2);
    assert!(events.windows(2).all(|w| w[0].t <= w[1].t), "out of order: {events:#?}");

    // Every service started and became ready on both nodes, by the library.
    for node in ["node0", "node1"] {
        for service in ["web", "client", "crasher"] {
            let started = of(&events, EventKind::Started, Some(node), Some(service));
            assert!(!started.is_empty() && started[0].details["pid"].as_u64().is_some(), "{node}/{service}");
            assert_eq!(started[0].by, Actor::Library);
        }
        assert!(!of(&events, EventKind::Ready, Some(node), Some("web")).is_empty());
        // The crasher's exit was noticed by the network, with its status.
        let exited = of(&events, EventKind::Exited, Some(node), Some("crasher"));
        assert_eq!(exited.len(), 1, "{exited:#?}");
        assert_eq!((exited[0].by, exited[0].details["status"].as_str()), (Actor::Network, Some("exited(3)")));
    }
    // The operations, each once and in the order made, with the restart by the rule between.
    let on_node0: Vec<(EventKind, &str)> = events
        .iter()
        .filter(|e| e.node.as_deref() == Some("node0") && e.service.is_some())
        .filter(|e| !matches!(e.kind, EventKind::Started | EventKind::Ready | EventKind::Exited))
        .map(|e| (e.kind, e.service.as_deref().unwrap()))
        .collect();
    assert_eq!(
        on_node0,
        [
            (EventKind::Stopped, "web"),
            (EventKind::Restarted, "client"),
            (EventKind::Stopped, "client"),
            (EventKind::Paused, "client"),
            (EventKind::Resumed, "client"),
            (EventKind::Killed, "client"),
            // The teardown, in reverse dependency order.
            (EventKind::Stopped, "web"),
        ],
        "{events:#?}"
    );
    assert_eq!(of(&events, EventKind::Restarted, Some("node0"), Some("client"))[0].details["with"], "web");
    let killed = of(&events, EventKind::Killed, Some("node0"), Some("client"));
    assert_eq!(killed[0].details["status"], "killed(SIGKILL)");

    // Network changes, with who made them and their details.
    let partition = of(&events, EventKind::Partition, None, None);
    assert_eq!(
        (partition[0].by, &partition[0].details["groups"]),
        (Actor::Nemesis, &serde_json::json!([["node0"], ["node1"]]))
    );
    let block = of(&events, EventKind::Block, Some("node1"), None);
    assert_eq!(
        (block[0].by, &block[0].details),
        (Actor::Library, &serde_json::json!({"from": "node1", "to": "node0"}))
    );
    assert_eq!(of(&events, EventKind::Heal, None, None).len(), 1);
    let clock = of(&events, EventKind::Clock, Some("node0"), None);
    assert_eq!(clock[0].details["skew"]["realtime"], "+30s", "{:?}", clock[0].details);
    assert_eq!(of(&events, EventKind::QosCleared, Some("node1"), None).len(), 1);
    let down = events.iter().position(|e| e.kind == EventKind::Down).expect("a down event");
    assert!(events[down..].iter().all(|e| e.kind == EventKind::Stopped || e.kind == EventKind::Down));
    std::fs::remove_dir_all(run_dir).unwrap();
}

#[test]
fn the_cli_prints_and_follows_the_timeline() {
    let m = manifest("cli-events", 2, "");
    let (child, id) = up_cli(&m);
    let run_dir = crate::common::run_dir_of(&id);
    let mut follow = Command::new(BIN)
        .args(["--network", &id, "events", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains(" up ") && first.contains("(by cli)"), "{first}");

    let stop = nd(&["--network", &id, "stop", "node1/web"]);
    assert!(stop.status.success(), "{}", stderr(&stop));
    let stopped = lines.by_ref().map_while(Result::ok).find(|l| l.contains("node1/web") && l.contains(" stopped "));
    assert!(stopped.as_deref().is_some_and(|l| l.ends_with("(by cli)")), "{stopped:?}");

    // The controller's teardown ends the follow on its own.
    signal(&child.0, nix::sys::signal::Signal::SIGTERM);
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(follow.wait().unwrap().success());
    assert!(rest.iter().any(|l| l.contains(" down ")), "{rest:?}");

    // After the run: the table and the JSON lines from the run directory.
    let table = nd(&["events", run_dir.to_str().unwrap()]);
    assert!(stdout(&table).lines().any(|l| l.contains("node0/web") && l.contains(" ready ")), "{}", stdout(&table));
    let json = nd(&["events", "--json", run_dir.to_str().unwrap()]);
    let parsed: Vec<Event> = stdout(&json).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(parsed.last().map(|e| e.kind), Some(EventKind::Stopped));
    let missing = nd(&["events", "/nonexistent"]);
    assert!(stderr(&missing).contains("cannot read /nonexistent/events.jsonl"), "{}", stderr(&missing));
    std::fs::remove_dir_all(run_dir).unwrap();
}

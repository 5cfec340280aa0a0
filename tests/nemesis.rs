//! Seeded fault schedules on real networks: a whole schedule of kills, pauses, stops,
//! partitions, blocks and clock changes leaves every service running, no cut and every clock
//! as it was, with each fault between its start and end on the timeline; a background
//! schedule stopped early puts back the cuts and clocks it found; a fault on a stopped service
//! fails alone; what cannot apply (qos without sch_netem, clock without wall clocks, bad
//! specs) is refused with nothing applied.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{
    exec_ok, http_get, is_ok_response, shell_service, teardown, up, wait_until, web_service, WEB_PORT,
};
use netdriver::nemesis::{self, Fault, FaultKind, History, NemesisSpec, Plan, Range};
use netdriver::{Actor, Cancel, ClockSkew, Cut, EventKind, Network, NetworkSpec, Node, ServiceState};

const MS: fn(u64) -> Duration = Duration::from_millis;
const S: fn(u64) -> Duration = Duration::from_secs;

/// Three nodes, each with an HTTP server (`web`, ready once its port accepts) and a
/// `ticker`, started.
fn three_nodes(name: &str) -> Network {
    let spec = NetworkSpec::new(name, 3).service(web_service()).service(shell_service("ticker", "exec sleep 100000"));
    let network = up(&spec);
    network.start().expect("starting the services");
    network
}

fn host_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// How far `node`'s wall clock is from the host's, in seconds, as `date` there reads it.
fn wall_offset(node: &Node) -> f64 {
    let before = host_now();
    let out = exec_ok(node, &["date", "+%s.%N"]);
    let after = host_now();
    out.trim().parse::<f64>().unwrap_or_else(|_| panic!("date printed {out:?}")) - (before + after) / 2.0
}

/// Every service of every node runs, and every web server answers.
fn assert_all_running(network: &Network) {
    for node in network.nodes() {
        for service in node.services() {
            let state = service.state();
            assert!(matches!(state, ServiceState::Running(_)), "{}/{} is {state}", node.name(), service.name());
        }
        let answer = http_get(SocketAddr::from((node.ip(), WEB_PORT)), S(5)).unwrap_or_default();
        assert!(is_ok_response(&answer), "{}'s web server does not answer: {answer:?}", node.name());
    }
}

/// The timeline holds one nemesis_start, then a fault_start and a fault_end for every fault of
/// `history`, in order and naming what was planned, then one nemesis_end; everything in
/// between was done by the nemesis.
fn assert_timeline(network: &Network, history: &History) {
    let events = network.events().unwrap();
    let count = |kind| events.iter().filter(|e| e.kind == kind).count();
    assert_eq!((count(EventKind::NemesisStart), count(EventKind::NemesisEnd)), (1, 1));
    let start = events.iter().position(|e| e.kind == EventKind::NemesisStart).unwrap();
    let end = events.iter().position(|e| e.kind == EventKind::NemesisEnd).unwrap();
    let during = &events[start..=end];
    for event in during {
        assert_eq!(event.by, Actor::Nemesis, "not the nemesis's: {event:?}");
    }
    let marks: Vec<(EventKind, u64, Fault)> = during
        .iter()
        .filter(|e| matches!(e.kind, EventKind::FaultStart | EventKind::FaultEnd))
        .map(|e| {
            let fault = serde_json::from_value(e.details["fault"].clone()).unwrap();
            (e.kind, e.details["id"].as_u64().unwrap(), fault)
        })
        .collect();
    let want: Vec<(EventKind, u64, Fault)> = history
        .faults
        .iter()
        .flat_map(|f| {
            let (id, fault) = (f.planned.id as u64, f.planned.fault.clone());
            [(EventKind::FaultStart, id, fault.clone()), (EventKind::FaultEnd, id, fault)]
        })
        .collect();
    assert_eq!(marks, want);
    let summary = &events[end].details;
    assert_eq!(summary["faults"].as_u64(), Some(history.faults.len() as u64));
    assert_eq!(summary["stopped"].as_bool(), Some(history.stopped));
    assert!(summary.get("error").is_none(), "{summary}");
}

fn no_nemesis_events(network: &Network) {
    let events = network.events().unwrap();
    let nemesis = [EventKind::NemesisStart, EventKind::FaultStart, EventKind::FaultEnd, EventKind::NemesisEnd];
    let found: Vec<_> = events.iter().filter(|e| nemesis.contains(&e.kind) || e.by == Actor::Nemesis).collect();
    assert!(found.is_empty(), "a refused schedule left events: {found:?}");
}

#[test]
fn a_schedule_undoes_every_fault_and_leaves_the_network_as_found() {
    let network = three_nodes("t-nem-run");
    let clocks: Vec<ClockSkew> = network.nodes().iter().map(Node::clock).collect();
    // Seed 49 draws every kind asked for on these nodes and services (see the plan below).
    let spec = NemesisSpec::new(49)
        .faults([
            FaultKind::Kill,
            FaultKind::Pause,
            FaultKind::Stop,
            FaultKind::Partition,
            FaultKind::Block,
            FaultKind::Clock,
        ])
        .interval(S(1), S(2))
        .hold(MS(500), S(1))
        .length(S(8));
    let plan: Plan = nemesis::check(&network, &spec).unwrap();
    let services: Vec<String> = network.nodes()[0].services().iter().map(|s| s.name().to_string()).collect();
    let nodes: Vec<String> = network.nodes().iter().map(|n| n.name().to_string()).collect();
    assert_eq!(nemesis::plan(&spec, &nodes, &services).unwrap().to_string(), plan.to_string());
    eprintln!("plan:\n{plan}");
    let kinds: std::collections::BTreeSet<FaultKind> = plan.faults.iter().map(|f| f.fault.kind()).collect();
    assert_eq!(kinds.len(), spec.faults.len(), "seed 49 no longer draws every kind:\n{plan}");

    let history = nemesis::run(&network, &spec, &Cancel::new()).unwrap();
    eprintln!("history:\n{history}");
    assert!(!history.stopped && history.error.is_none(), "{history}");
    assert_eq!(history.faults.len(), plan.faults.len());
    for (applied, planned) in history.faults.iter().zip(&plan.faults) {
        assert_eq!(&applied.planned, planned);
        assert!(applied.error.is_none(), "{}: {:?}", planned.fault, applied.error);
        assert!(applied.ended_at.is_some_and(|end| end >= applied.started_at));
    }
    assert_all_running(&network);
    assert_eq!(network.cuts(), Vec::<Cut>::new());
    assert_eq!(network.nodes().iter().map(Node::clock).collect::<Vec<_>>(), clocks);
    for node in network.nodes() {
        let offset = wall_offset(node);
        assert!(offset.abs() < 1.0, "{}'s wall clock is {offset:.3} s off the host's", node.name());
    }
    assert_timeline(&network, &history);
    // The faults were applied: the services the plan killed were killed, by the nemesis.
    let events = network.events().unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::Killed && e.by == Actor::Nemesis));
    assert!(events.iter().any(|e| e.kind == EventKind::Paused && e.by == Actor::Nemesis));
    assert!(events.iter().any(|e| e.kind == EventKind::Partition && e.by == Actor::Nemesis));
    teardown(network);
}

#[test]
fn a_background_schedule_stopped_early_puts_back_what_it_found() {
    let network = Arc::new(three_nodes("t-nem-stop"));
    // Conditions set before the schedule, which it must leave as they are.
    network.block("node2", "node0").unwrap();
    let ahead = ClockSkew { realtime: "+1h".parse().unwrap(), ..ClockSkew::default() };
    network.node("node1").unwrap().configure_clock(ahead, false).unwrap();
    let (cuts, clocks) = (network.cuts(), network.nodes().iter().map(Node::clock).collect::<Vec<_>>());
    // Seed 6 begins with a partition, a drift of node1's clock and a bridge partition, about
    // 1.5 s into a schedule of a minute.
    let spec = NemesisSpec::new(6)
        .faults([FaultKind::Kill, FaultKind::Stop, FaultKind::Partition, FaultKind::Clock])
        .interval(MS(100), MS(200))
        .hold(MS(300), MS(500))
        .length(S(60));

    let running = nemesis::start(network.clone(), spec).unwrap();
    let first: Vec<FaultKind> = running.plan().faults[..3].iter().map(|f| f.fault.kind()).collect();
    assert_eq!(first, [FaultKind::Partition, FaultKind::Clock, FaultKind::Partition], "\n{}", running.plan());
    wait_until("the third fault has begun", S(30), || running.history().faults.len() >= 3);
    let history = running.stop().unwrap();
    eprintln!("history:\n{history}");
    assert!(history.stopped, "{history}");
    assert!(history.faults.len() >= 3 && history.faults.len() < 60, "{history}");
    assert!(history.faults.iter().all(|f| f.ended_at.is_some() && f.error.is_none()), "{history}");

    assert_all_running(&network);
    assert_eq!(network.cuts(), cuts);
    assert_eq!(network.nodes().iter().map(Node::clock).collect::<Vec<_>>(), clocks);
    let offsets: Vec<f64> = network.nodes().iter().map(wall_offset).collect();
    let want = [0.0, 3600.0, 0.0];
    for ((node, offset), want) in network.nodes().iter().zip(&offsets).zip(want) {
        assert!(
            (offset - want).abs() < 1.0,
            "{}'s wall clock is {offset:.3} s off the host's, not {want}",
            node.name()
        );
    }
    assert_timeline(&network, &history);
    teardown(Arc::into_inner(network).expect("the nemesis let go of the network"));
}

#[test]
fn faults_on_stopped_services_fail_and_the_schedule_goes_on() {
    let network = three_nodes("t-nem-fail");
    for node in network.nodes() {
        node.service("ticker").unwrap().stop().unwrap();
    }
    let spec = NemesisSpec::new(1)
        .faults([FaultKind::Kill, FaultKind::Pause, FaultKind::Stop, FaultKind::Block])
        .interval(MS(200), MS(300))
        .hold(MS(100), MS(200))
        .length(S(3))
        .services(["ticker"]);
    let history = nemesis::run(&network, &spec, &Cancel::new()).unwrap();
    eprintln!("history:\n{history}");
    let (mut failed, mut applied) = (0, 0);
    for fault in &history.faults {
        if fault.planned.fault.kind() == FaultKind::Block {
            assert!(fault.error.is_none(), "{history}");
            applied += 1;
        } else {
            let error = fault.error.as_deref().unwrap_or_default();
            assert!(error.contains("/ticker is stopped, not running, so the fault had nothing to"), "{error}");
            failed += 1;
        }
    }
    assert!(failed > 0 && applied > 0, "seed 1 no longer draws both:\n{history}");
    for node in network.nodes() {
        assert_eq!(node.service("ticker").unwrap().state(), ServiceState::Stopped, "the nemesis started it");
        assert!(matches!(node.service("web").unwrap().state(), ServiceState::Running(_)));
    }
    assert!(network.cuts().is_empty());
    assert_timeline(&network, &history);
    teardown(network);
}

#[test]
fn qos_without_netem_is_refused_and_nothing_is_applied() {
    let network = up(&NetworkSpec::new("t-nem-qos", 2));
    if network.check_qos().is_ok() {
        eprintln!("skipped here: this kernel has sch_netem, so qos faults can apply");
        return teardown(network);
    }
    let spec = NemesisSpec::new(1).faults([FaultKind::Partition, FaultKind::Qos]).length(S(5));
    let err = nemesis::run(&network, &spec, &Cancel::new()).unwrap_err().to_string();
    assert!(err.contains("sch_netem") && err.contains("or leave qos out of the nemesis's faults"), "{err}");
    let network = Arc::new(network);
    let err = nemesis::start(network.clone(), spec).unwrap_err().to_string();
    assert!(err.contains("sch_netem"), "{err}");
    assert!(network.cuts().is_empty());
    no_nemesis_events(&network);
    teardown(Arc::into_inner(network).unwrap());
}

#[test]
fn bad_schedules_are_refused_up_front() {
    let mut spec = NetworkSpec::new("t-nem-bad", 2);
    spec.wall_clock = false;
    let network = up(&spec);
    let err = "explode".parse::<FaultKind>().unwrap_err().to_string();
    assert!(err.contains("'explode' (allowed: kill, pause, stop, partition, block, qos, clock)"), "{err}");
    assert!(FaultKind::parse_list("kill,explode").is_err());
    let err = Range::parse("interval", "5s..2s").unwrap_err().to_string();
    assert_eq!(err, "invalid interval: interval 5s..2s is written backwards: write 2s..5s");

    let partition = || NemesisSpec::new(1).faults([FaultKind::Partition]).length(S(5));
    let cases = [
        (partition().interval(S(5), S(2)), "interval 5s..2s is written backwards: write 2s..5s"),
        (partition().faults([FaultKind::Kill]), "kill needs a service to pick, and the nodes run none"),
        (partition().services(["web"]), "a fault may pick the service 'web', which the nodes do not run"),
        (partition().faults([FaultKind::Clock]), "this network runs without them (wall_clock = false)"),
        (NemesisSpec::new(1), "no fault kinds"),
    ];
    for (spec, phrase) in cases {
        let err = nemesis::run(&network, &spec, &Cancel::new()).unwrap_err().to_string();
        assert!(err.contains(phrase), "{err} lacks {phrase}");
    }
    no_nemesis_events(&network);
    teardown(network);
}

//! Service operations on real processes: start (readiness probe), stop, kill, pause and
//! resume, restart, reset, logs, state reporting, stopping whole process trees, and the
//! dependency order of node-wide and network-wide start and stop.

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::{
    assert_no_processes, http_get, is_ok_response, node_processes, process_state, shell_service, teardown, up,
    wait_until, web_service, WEB_PORT,
};
use netdriver::{Network, NetworkSpec, Node, Service, ServiceSpec, ServiceState};

/// How long a check waits for a process, a port or a file.
const TIMEOUT: Duration = Duration::from_secs(2);

fn web_addr(node: &Node) -> SocketAddr {
    SocketAddr::new(node.ip().into(), WEB_PORT)
}

fn serves(node: &Node) -> bool {
    http_get(web_addr(node), TIMEOUT).is_some_and(|r| is_ok_response(&r))
}

/// Asserts that the service's main process `pid` is gone and nothing listens on its port.
fn assert_gone(node: &Node, web: &Service, pid: u32) {
    assert_eq!(web.state(), ServiceState::Stopped);
    assert_eq!(web.pid(), None);
    assert_eq!(process_state(pid), None, "process {pid} is still there");
    assert!(TcpStream::connect_timeout(&web_addr(node), TIMEOUT).is_err(), "port {WEB_PORT} still accepts");
}

/// A one-node network running `web`, started.
fn web_network(name: &str) -> Network {
    let network = up(&NetworkSpec::new(name, 1).service(web_service()));
    network.start().expect("starting web");
    network
}

#[test]
fn start_stop_and_kill() {
    let network = up(&NetworkSpec::new("t-svc-stop", 1).service(web_service()));
    let node = &network.nodes()[0];
    let web = node.service("web").unwrap();
    assert_eq!(web.state(), ServiceState::Stopped);

    web.start().expect("starting web");
    let pid = web.pid().expect("web runs");
    assert_eq!(web.state(), ServiceState::Running(pid));
    assert!(serves(node), "web does not answer once ready");
    web.start().expect("starting a running service does nothing");
    assert_eq!(web.pid(), Some(pid));

    web.stop().expect("stopping web");
    assert_gone(node, web, pid);
    web.stop().expect("stopping a stopped service does nothing");

    web.start().expect("starting web again");
    let pid = web.pid().expect("web runs");
    web.kill().expect("killing web");
    assert_gone(node, web, pid);
    teardown(network);
}

#[test]
fn pause_and_resume() {
    let network = web_network("t-svc-pause");
    let node = &network.nodes()[0];
    let web = node.service("web").unwrap();
    let pid = web.pid().expect("web runs");

    web.pause().expect("pausing web");
    assert_eq!(web.state(), ServiceState::Paused(pid));
    assert_eq!(web.state().to_string(), "paused");
    wait_until("web is stopped by SIGSTOP", TIMEOUT, || process_state(pid) == Some('T'));
    assert!(http_get(web_addr(node), Duration::from_secs(1)).is_none(), "a paused server answered");

    web.resume().expect("resuming web");
    assert_eq!(web.state(), ServiceState::Running(pid));
    wait_until("web runs again", TIMEOUT, || process_state(pid).is_some_and(|s| s != 'T'));
    assert!(serves(node), "web does not answer after resume");
    teardown(network);
}

#[test]
fn restart_starts_a_new_process() {
    let network = web_network("t-svc-restart");
    let node = &network.nodes()[0];
    let web = node.service("web").unwrap();
    let old = web.pid().expect("web runs");

    web.restart().expect("restarting web");
    let new = web.pid().expect("web runs after restart");
    assert_ne!(old, new);
    assert_eq!(process_state(old), None, "the old process is still there");
    assert!(serves(node), "web does not answer after restart");
    teardown(network);
}

#[test]
fn reset_empties_the_data_dir() {
    let network = web_network("t-svc-reset");
    let node = &network.nodes()[0];
    let web = node.service("web").unwrap();
    let old = web.pid().expect("web runs");
    let file = web.data_dir().join("state");
    std::fs::write(&file, "old state").unwrap();

    web.reset().expect("resetting a running service");
    assert!(!file.exists(), "{} survived the reset", file.display());
    assert!(web.data_dir().is_dir(), "the data directory is gone");
    let new = web.pid().expect("a running service runs again after reset");
    assert_ne!(old, new);
    assert!(serves(node), "web does not answer after reset");

    web.stop().unwrap();
    std::fs::write(&file, "old state").unwrap();
    web.reset().expect("resetting a stopped service");
    assert!(!file.exists(), "{} survived the reset", file.display());
    assert_eq!(web.state(), ServiceState::Stopped, "a stopped service stays stopped after reset");
    teardown(network);
}

#[test]
fn logs_hold_the_output_and_outlive_the_network() {
    let talker = shell_service("talker", "echo to-stdout; echo to-stderr >&2; exec sleep 1000");
    let network = up(&NetworkSpec::new("t-svc-logs", 1).service(talker));
    let talker = network.nodes()[0].service("talker").unwrap();
    talker.start().expect("starting talker");
    let (stdout, stderr) = (talker.stdout_log(), talker.stderr_log());
    let holds = |path: &std::path::Path, text: &str| std::fs::read_to_string(path).is_ok_and(|t| t.contains(text));
    wait_until("talker's output is in its logs", TIMEOUT, || {
        holds(&stdout, "to-stdout") && holds(&stderr, "to-stderr")
    });
    assert!(!holds(&stdout, "to-stderr") && !holds(&stderr, "to-stdout"), "the streams are mixed up");

    let (id, run_dir) = (network.id().to_string(), network.run_dir().to_path_buf());
    assert!(stdout.starts_with(&run_dir) && stderr.starts_with(&run_dir), "logs outside {}", run_dir.display());
    network.down().expect("tearing down");
    crate::common::assert_no_leftovers(&id);
    assert!(holds(&stdout, "to-stdout") && holds(&stderr, "to-stderr"), "logs are gone after teardown");
    std::fs::remove_dir_all(run_dir).unwrap();
}

#[test]
fn state_reports_what_the_process_does() {
    // Exits with status 3 once the test creates the file `go` in its data directory.
    let exiter = shell_service("exiter", "while [ ! -e go ]; do sleep 0.02; done; exit 3");
    let network = up(&NetworkSpec::new("t-svc-state", 1).service(exiter));
    let exiter = network.nodes()[0].service("exiter").unwrap();
    let go = exiter.data_dir().join("go");
    let exited = || matches!(exiter.state(), ServiceState::Exited(_));

    assert_eq!(exiter.state().to_string(), "stopped");
    exiter.start().unwrap();
    assert_eq!(exiter.state().to_string(), "running");
    exiter.pause().unwrap();
    assert_eq!(exiter.state().to_string(), "paused");
    exiter.resume().unwrap();
    assert_eq!(exiter.state().to_string(), "running");

    std::fs::write(&go, "").unwrap();
    wait_until("exiter exits", TIMEOUT, exited);
    assert_eq!(exiter.state().to_string(), "exited(3)");
    assert_eq!(exiter.pid(), None);

    std::fs::remove_file(&go).unwrap();
    exiter.start().expect("starting an exited service");
    let pid = exiter.pid().expect("exiter runs again");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_until("exiter is seen killed", TIMEOUT, exited);
    assert_eq!(exiter.state().to_string(), "killed(SIGKILL)");
    teardown(network);
}

#[test]
fn stop_kills_the_whole_process_tree() {
    let forks = shell_service("forks", "sleep 1000 & sleep 1000 & wait");
    let stubborn = ServiceSpec {
        stop_timeout: Duration::from_millis(300),
        ..shell_service("stubborn", "trap '' TERM; sleep 1000 & wait")
    };
    let network = up(&NetworkSpec::new("t-svc-tree", 1).service(forks).service(stubborn));
    let (node, id) = (&network.nodes()[0], network.id().to_string());

    let forks = node.service("forks").unwrap();
    forks.start().unwrap();
    wait_until("forks has two children", TIMEOUT, || node_processes(&id).len() == 3);
    forks.stop().unwrap();
    assert_no_processes(&id, "after forks stopped");

    let stubborn = node.service("stubborn").unwrap();
    stubborn.start().unwrap();
    wait_until("stubborn has its child", TIMEOUT, || node_processes(&id).len() == 2);
    let since = Instant::now();
    stubborn.stop().unwrap();
    assert!(since.elapsed() >= Duration::from_millis(300), "stop did not wait for SIGTERM to work");
    assert_no_processes(&id, "after stubborn (ignoring SIGTERM) stopped");
    teardown(network);
}

#[test]
fn stop_kills_daemonized_grandchildren() {
    // The subshell starts a process in a new session, which writes its pid, and exits: the
    // process is reparented away from the service's tree and process group.
    let script = "(setsid sh -c 'echo $$ > daemon.pid; exec sleep 1000' &); exec sleep 1000";
    let network = up(&NetworkSpec::new("t-svc-daemon", 1).service(shell_service("daemon", script)));
    let id = network.id().to_string();
    let daemon = network.nodes()[0].service("daemon").unwrap();
    daemon.start().unwrap();
    let pid_file = daemon.data_dir().join("daemon.pid");
    wait_until("the daemon has left the service's tree", TIMEOUT, || {
        let pid = std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse().ok());
        pid.and_then(parent).is_some_and(|ppid| !node_processes(&id).contains(&ppid))
    });
    daemon.stop().unwrap();
    assert_no_processes(&id, "after daemon stopped");
    teardown(network);
}

/// The parent pid of `pid`, from /proc/PID/stat.
fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].split(' ').nth(1)?.parse().ok()
}

/// The nanosecond timestamp a service writes to `file` in its data directory, once written
/// (a service without a probe counts as started before its script has run).
fn stamp(service: &Service, file: &str) -> u128 {
    let path = service.data_dir().join(file);
    let read = || std::fs::read_to_string(&path).ok()?.trim().parse().ok();
    wait_until(&format!("{} holds a timestamp", path.display()), TIMEOUT, || read().is_some());
    read().expect("a timestamp")
}

#[test]
fn start_and_stop_follow_dependencies() {
    // Each writes `started` when it starts and `stopped` when SIGTERM arrives.
    let script =
        |program: &str| format!("trap 'date +%s%N > stopped; exit 0' TERM; date +%s%N > started; {program} & wait");
    let a = shell_service("a", &script(&format!("python3 -m http.server {WEB_PORT} --bind {{ip}}")))
        .ready(netdriver::Probe::Tcp(WEB_PORT), Duration::from_secs(10));
    let b = shell_service("b", &script("sleep 1000")).after("a");
    let network = up(&NetworkSpec::new("t-svc-deps", 2).service(a).service(b));
    let node = &network.nodes()[0];
    let (a, b) = (node.service("a").unwrap(), node.service("b").unwrap());

    node.start().expect("starting node0");
    assert!(a.pid().is_some() && b.pid().is_some(), "a: {}, b: {}", a.state(), b.state());
    assert!(stamp(a, "started") < stamp(b, "started"), "b started before a was ready");
    node.stop().expect("stopping node0");
    assert_eq!((a.state(), b.state()), (ServiceState::Stopped, ServiceState::Stopped));
    assert!(stamp(b, "stopped") < stamp(a, "stopped"), "a stopped before b");

    // Network-wide: every a is ready before any b starts, and every b stops before any a.
    for service in network.nodes().iter().flat_map(netdriver::Node::services) {
        for file in ["started", "stopped"] {
            let _ = std::fs::remove_file(service.data_dir().join(file));
        }
    }
    network.start().expect("starting the network");
    let all = |name: &str, file: &str| {
        network.nodes().iter().map(|n| stamp(n.service(name).unwrap(), file)).collect::<Vec<_>>()
    };
    let (a_started, b_started) = (all("a", "started"), all("b", "started"));
    assert!(a_started.iter().max() < b_started.iter().min(), "a: {a_started:?}, b: {b_started:?}");
    network.stop().expect("stopping the network");
    let (a_stopped, b_stopped) = (all("a", "stopped"), all("b", "stopped"));
    assert!(b_stopped.iter().max() < a_stopped.iter().min(), "a: {a_stopped:?}, b: {b_stopped:?}");
    teardown(network);
}

#[test]
fn stop_after_exit_reports_stopped() {
    let quitter = shell_service("quitter", "exit 4");
    let network = up(&NetworkSpec::new("t-svc-quit", 1).service(quitter));
    let quitter = network.nodes()[0].service("quitter").unwrap();
    // Started by spawning alone: start() may see the exit and fail, which is not the point here.
    let _ = quitter.start();
    wait_until("quitter exits", TIMEOUT, || quitter.state().to_string() == "exited(4)");
    quitter.stop().unwrap();
    assert_eq!(quitter.state(), ServiceState::Stopped);
    teardown(network);
}

#[test]
fn a_reset_command_replaces_the_wipe() {
    // The reset command runs inside the node with the service's environment, and keeps the
    // data directory's other files (as `tendermint unsafe_reset_all` keeps the keys).
    let keeper = shell_service("keeper", "sleep 1000")
        .env("STATE", "{data}/state")
        .and_then(|s| s.reset_with(["sh", "-c", "rm -f \"$STATE\"; hostname > {data}/reset-by"]))
        .expect("keeper spec");
    let network = up(&NetworkSpec::new("t-svc-resetcmd", 1).service(keeper));
    let node = &network.nodes()[0];
    let keeper = node.service("keeper").unwrap();
    node.start().unwrap();
    let old = keeper.pid().expect("keeper runs");
    std::fs::write(keeper.data_dir().join("state"), "chain").unwrap();
    std::fs::write(keeper.data_dir().join("key"), "secret").unwrap();

    keeper.reset().expect("reset with a command");
    assert!(!keeper.data_dir().join("state").exists(), "the reset command did not run");
    assert!(keeper.data_dir().join("key").exists(), "the data directory was wiped");
    assert_eq!(
        std::fs::read_to_string(keeper.data_dir().join("reset-by")).unwrap().trim(),
        "node0",
        "it ran outside the node"
    );
    assert_ne!(keeper.pid().expect("running again after reset"), old);
    teardown(network);
}

#[test]
fn a_failing_reset_command_is_reported() {
    let keeper =
        shell_service("keeper", "sleep 1000").reset_with(["sh", "-c", "echo cannot reset >&2; exit 3"]).unwrap();
    let network = up(&NetworkSpec::new("t-svc-resetfail", 1).service(keeper));
    let err = network.nodes()[0].service("keeper").unwrap().reset().unwrap_err().to_string();
    assert!(err.contains("reset command") && err.contains("cannot reset"), "{err}");
    teardown(network);
}

#[test]
fn restart_with_restarts_the_bound_service() {
    let app = shell_service("app", "sleep 1000");
    let client = shell_service("client", "sleep 1000").after("app").restart_with("app");
    let network = up(&NetworkSpec::new("t-svc-bound", 1).service(app).service(client));
    let node = &network.nodes()[0];
    node.start().unwrap();
    let (app, client) = (node.service("app").unwrap(), node.service("client").unwrap());
    let first = client.pid().expect("client runs");

    node.start_service("app").expect("starting a running app");
    assert_eq!(client.pid(), Some(first), "starting a running app restarted the client");

    app.kill().unwrap();
    assert_eq!(client.pid(), Some(first), "the client stays up while the app is down");
    node.start_service("app").expect("starting the app again");
    let second = client.pid().expect("the client runs after the app's start");
    assert_ne!(second, first, "the client was not restarted with the app");

    node.restart_service("app").unwrap();
    assert_ne!(client.pid().expect("client runs"), second, "restarting the app did not restart the client");

    // A client that died with its server is started again with it.
    let third = client.pid().expect("client runs");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(third as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_until("the client exits", TIMEOUT, || matches!(client.state(), ServiceState::Exited(_)));
    node.restart_service("app").unwrap();
    assert!(client.pid().is_some_and(|p| p != third), "a client that exited was not started again: {}", client.state());

    client.stop().unwrap();
    node.restart_service("app").unwrap();
    assert_eq!(client.state(), ServiceState::Stopped, "a stopped client must stay stopped");
    teardown(network);
}

//! Helpers shared by the integration tests: service builders, commands run inside nodes,
//! raw HTTP from the host, waiting, and checks that a network left nothing behind.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use netdriver::{Network, NetworkSpec, Node, Probe, ServiceSpec};

/// The port the `web` service listens on.
pub(crate) const WEB_PORT: u16 = 8000;

/// Where netdriver keeps one record per live network.
const REGISTRY: &str = "/run/netdriver";

/// A service `web`: Python's HTTP server on the node's address, ready once the port accepts.
pub(crate) fn web_service() -> ServiceSpec {
    ServiceSpec::new("web", "python3")
        .and_then(|s| s.args(["-m", "http.server", &WEB_PORT.to_string(), "--bind", "{ip}"]))
        .expect("web service spec")
        .ready(Probe::Tcp(WEB_PORT), Duration::from_secs(10))
}

/// A service running `sh -c script` (the script is a template, so `{ip}` etc. work).
pub(crate) fn shell_service(name: &str, script: &str) -> ServiceSpec {
    ServiceSpec::new(name, "sh").and_then(|s| s.args(["-c", script])).expect("shell service spec")
}

/// Brings the network up, panicking with the error's message if it fails.
pub(crate) fn up(spec: &NetworkSpec) -> Network {
    Network::up(spec).unwrap_or_else(|e| panic!("bringing up {}: {e}", spec.name))
}

/// Runs `argv` in `node`; panics unless it succeeds. Returns its standard output.
pub(crate) fn exec_ok(node: &Node, argv: &[&str]) -> String {
    let out = exec(node, argv);
    assert!(
        out.status.success(),
        "{argv:?} on {} failed ({}): {}",
        node.name(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `argv` in `node` to completion.
pub(crate) fn exec(node: &Node, argv: &[&str]) -> Output {
    node.exec(argv).unwrap_or_else(|e| panic!("running {argv:?} on {}: {e}", node.name()))
}

/// A plain HTTP/1.0 GET of `/` from the host; `None` if nothing answers within `timeout`.
pub(crate) fn http_get(addr: SocketAddr, timeout: Duration) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.write_all(format!("GET / HTTP/1.0\r\nHost: {}\r\n\r\n", addr.ip()).as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    (!response.is_empty()).then_some(response)
}

/// Whether `response` is an HTTP 200 answer.
pub(crate) fn is_ok_response(response: &str) -> bool {
    response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200")
}

/// Polls `cond` every 20 ms until it holds; panics naming `what` after `timeout`.
pub(crate) fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Every live (non-zombie) process whose environment carries `NETDRIVER_RUN=<id>`.
pub(crate) fn marked_processes(id: &str) -> Vec<u32> {
    let marker = format!("NETDRIVER_RUN={id}");
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == marker.as_bytes()))
        })
        .filter(|pid| process_state(*pid).is_some_and(|s| s != 'Z'))
        .collect()
}

/// The state letter of `/proc/PID/stat` (R, S, T, Z...), or `None` if the process is gone.
pub(crate) fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// The names of the host's links that look like netdriver uplinks (`nd<id>`).
pub(crate) fn uplinks() -> BTreeSet<String> {
    let out = std::process::Command::new("ip").args(["-o", "link"]).output().expect("running ip -o link");
    assert!(out.status.success(), "ip -o link: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_string())
        .filter(|name| name.starts_with("nd"))
        .collect()
}

/// The registry record of run `id`.
pub(crate) fn record_path(id: &str) -> PathBuf {
    Path::new(REGISTRY).join(format!("{id}.json"))
}

/// The network names of the records in the registry, by run id.
fn records() -> Vec<(String, String)> {
    let Ok(dir) = std::fs::read_dir(REGISTRY) else { return Vec::new() };
    dir.filter_map(std::result::Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| {
            let record: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
            Some((record["id"].as_str()?.to_string(), record["name"].as_str()?.to_string()))
        })
        .collect()
}

/// Asserts that run `id` left no uplink, no record and no process.
pub(crate) fn assert_no_leftovers(id: &str) {
    let uplink = format!("nd{id}");
    assert!(!uplinks().contains(&uplink), "uplink {uplink} is still on the host");
    assert!(!record_path(id).exists(), "record {} is still there", record_path(id).display());
    assert_no_processes(id, "after teardown");
}

/// Asserts that no process of run `id` is left; `when` says at what point, for the message.
pub(crate) fn assert_no_processes(id: &str, when: &str) {
    let left = marked_processes(id);
    assert!(left.is_empty(), "processes of run {id} still run {when}: {left:?}");
}

/// Asserts that a failed bring-up of the network called `name` left nothing: no record
/// with its name, and no uplink that appeared since `before` without a live record (a
/// network's record exists for as long as its uplink, so parallel tests do not interfere).
pub(crate) fn assert_failed_bringup_left_nothing(name: &str, before: &BTreeSet<String>) {
    let records = records();
    assert!(!records.iter().any(|(_, n)| n == name), "a record of network {name} is left in {REGISTRY}");
    let orphans: Vec<String> = uplinks()
        .difference(before)
        .filter(|link| !records.iter().any(|(id, _)| link.strip_prefix("nd") == Some(id.as_str())))
        .cloned()
        .collect();
    assert!(orphans.is_empty(), "uplinks without a live network: {orphans:?}");
}

/// Tears `network` down, checks that it left nothing behind, and removes its run directory
/// (kept, with its logs, when a test fails before this point).
pub(crate) fn teardown(network: Network) {
    let id = network.id().to_string();
    let run_dir = network.run_dir().to_path_buf();
    network.down().unwrap_or_else(|e| panic!("tearing down {id}: {e}"));
    assert_no_leftovers(&id);
    std::fs::remove_dir_all(&run_dir).unwrap_or_else(|e| panic!("removing {}: {e}", run_dir.display()));
}

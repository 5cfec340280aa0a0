//! Helpers shared by the integration tests: service builders, commands run inside nodes,
//! raw HTTP from the host, waiting, and checks that a network left nothing behind.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
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
        .filter(|pid| alive(*pid))
        .collect()
}

/// Whether `pid` runs (and is not a zombie).
pub(crate) fn alive(pid: u32) -> bool {
    process_state(pid).is_some_and(|s| s != 'Z')
}

/// The marked processes that run in the nodes (the network's clock supervisor, marked too,
/// runs in the host's network namespace).
pub(crate) fn node_processes(id: &str) -> Vec<u32> {
    let host = std::fs::read_link("/proc/self/ns/net").unwrap();
    marked_processes(id)
        .into_iter()
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/ns/net")).is_ok_and(|ns| ns != host))
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
    let left = marked_processes(id);
    assert!(left.is_empty(), "processes of run {id} still run after teardown: {left:?}");
}

/// Asserts that no process of run `id` is left in its nodes; `when` says at what point, for
/// the message.
pub(crate) fn assert_no_processes(id: &str, when: &str) {
    let left = node_processes(id);
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

// --- the command line ---------------------------------------------------------------------

/// The netdriver binary.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_netdriver");

/// Writes a manifest for `nodes` nodes running `web` (an HTTP server) under a unique name.
pub(crate) fn manifest(name: &str, nodes: usize, extra_service: &str) -> PathBuf {
    let text = format!(
        r#"
[network]
name = "{name}"
nodes = {nodes}
url = "http://{{ip}}:8000/"

[[service]]
name = "web"
command = "python3"
args = ["-m", "http.server", "8000", "--bind", "{{ip}}"]
ready = {{ tcp = 8000 }}
stop_timeout = "2s"
{extra_service}
"#
    );
    write_manifest(name, &text)
}

pub(crate) fn nd(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("running netdriver")
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A controlling `netdriver up`; killed (and its leftovers reclaimed) if a test fails early.
pub(crate) struct Controller(pub(crate) Child);

impl Drop for Controller {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
            let _ = nd(&["gc"]);
        }
    }
}

/// Writes `text` as the manifest of a network called `name`, under a unique file name.
pub(crate) fn write_manifest(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("netdriver-{name}-{}.toml", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

/// Starts `netdriver up` and waits for its summary line; returns the controller and run id.
pub(crate) fn up_cli(manifest: &Path) -> (Controller, String) {
    up_command(Command::new(BIN).args(["up", "-f", manifest.to_str().unwrap()]))
}

/// Starts `cmd` (a `netdriver up`, maybe wrapped) and waits for the summary line it prints.
pub(crate) fn up_command(cmd: &mut Command) -> (Controller, String) {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let id = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| l.split("NETDRIVER_NETWORK=").nth(1).map(|r| r[..6].to_string()))
        .expect("`up` printed no summary");
    // Keep draining stdout so the controller never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (Controller(child), id)
}

pub(crate) fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "controller did not exit within {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// What of run `id` is still on the host: uplink, record, socket, marked processes, mounts.
pub(crate) fn leftovers(id: &str) -> Vec<String> {
    let mut found = Vec::new();
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    if stdout(&links).contains(&format!(" nd{id}")) {
        found.push(format!("link nd{id}"));
    }
    for file in [format!("/run/netdriver/{id}.json"), format!("/run/netdriver/{id}.sock")] {
        if std::path::Path::new(&file).exists() {
            found.push(file);
        }
    }
    found.extend(marked_processes(id).into_iter().map(|pid| format!("process {pid}")));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    if mounts.contains(&format!("-{id}/")) {
        found.push("a mount of the run directory".into());
    }
    found
}

pub(crate) fn wait_no_leftovers(id: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !leftovers(id).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(leftovers(id), Vec::<String>::new());
}

/// Sends `signal` to the process `child`.
pub(crate) fn signal(child: &Child, signal: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
}

/// The run directory of live run `id`, from its record.
pub(crate) fn run_dir_of(id: &str) -> PathBuf {
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(record_path(id)).unwrap()).unwrap();
    PathBuf::from(record["run_dir"].as_str().unwrap())
}

/// `argv` run as the unprivileged user nobody, with no capabilities.
pub(crate) fn as_nobody(argv: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"])
        .args(argv)
        .output()
        .expect("running setpriv")
}

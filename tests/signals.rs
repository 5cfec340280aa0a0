//! Signals and the control socket under the command line: services get SIGTERM (the
//! controller's blocked signals are not theirs), SIGTERM during bring-up ends it at once, an
//! idle client blocks no one and no shutdown, and a client whose controller dies mid-request
//! is told so. Timings are printed, not asserted.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::common::{
    nd, run_dir_of, signal, stderr, up_cli, wait_exit, wait_no_leftovers, wait_until, write_manifest, Controller, BIN,
};

/// A service that writes `{dir}/term-seen` when SIGTERM reaches it, and only then exits.
const TRAP: &str = r#"
[[service]]
name = "trap"
command = "sh"
args = ["-c", "trap 'echo bye > {dir}/term-seen; exit 0' TERM; while :; do sleep 0.1; done"]
stop_timeout = "20s"
"#;

#[test]
fn services_get_sigterm_from_a_controller_that_blocks_it() {
    let m = write_manifest("sig-term", &format!("[network]\nname = \"sig-term\"\nnodes = 3\n{TRAP}"));
    let (mut child, id) = up_cli(&m);
    let run = run_dir_of(&id);
    let start = Instant::now();
    let out = nd(&["--network", &id, "stop", "node0/trap"]);
    let stop = start.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(run.join("node0/term-seen")).unwrap_or_default(), "bye\n", "no SIGTERM");

    let start = Instant::now();
    signal(&child.0, Signal::SIGTERM);
    assert!(wait_exit(&mut child.0, Duration::from_secs(60)).success());
    let teardown = start.elapsed();
    for node in ["node1", "node2"] {
        assert!(run.join(node).join("term-seen").exists(), "{node}'s service got no SIGTERM at teardown");
    }
    eprintln!("measured: stop of a TERM-trapping service (stop_timeout 20s): {stop:?}; 3-node teardown: {teardown:?}");
    wait_no_leftovers(&id);
    std::fs::remove_dir_all(run).unwrap();
}

/// The id of the live network called `name`, from the registry.
fn id_of(name: &str) -> Option<String> {
    std::fs::read_dir("/run/netdriver").ok()?.flatten().find_map(|e| {
        let record: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok()?;
        (record["name"] == name).then(|| record["id"].as_str().map(str::to_string))?
    })
}

#[test]
fn sigterm_during_bring_up_ends_it_and_tears_down() {
    let never = "[[service]]\nname = \"never\"\ncommand = \"sleep\"\nargs = [\"1000\"]\nready = { tcp = 9 }\nready_timeout = \"120s\"\n";
    let m = write_manifest("sig-bringup", &format!("[network]\nname = \"sig-bringup\"\nnodes = 3\n{never}"));
    let mut child =
        Controller(Command::new(BIN).args(["up", "-f", m.to_str().unwrap()]).stderr(Stdio::piped()).spawn().unwrap());
    let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
    let starting = lines.by_ref().map_while(Result::ok).find(|l| l.contains("starting"));
    assert!(starting.is_some(), "`up` never got to starting the services");
    let id = id_of("sig-bringup").expect("a record of the network being brought up");
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    signal(&child.0, Signal::SIGTERM);
    let status = wait_exit(&mut child.0, Duration::from_secs(60));
    let took = start.elapsed();
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    eprintln!("measured: from SIGTERM during readiness waits (ready_timeout 120s) to exit: {took:?}");
    assert_eq!(status.code(), Some(128 + 15), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("SIGTERM while waiting for node") && l.contains("everything made is torn down")),
        "{rest:?}"
    );
    wait_no_leftovers(&id);
}

#[test]
fn an_idle_client_blocks_neither_others_nor_the_shutdown() {
    let m = write_manifest("sig-idle", "[network]\nname = \"sig-idle\"\nnodes = 2\n");
    let (mut child, id) = up_cli(&m);
    let socket = PathBuf::from(format!("/run/netdriver/{id}.sock"));
    let _silent = UnixStream::connect(&socket).unwrap();
    let mut half = UnixStream::connect(&socket).unwrap();
    half.write_all(b"{\"request\":").unwrap();
    let start = Instant::now();
    let out = nd(&["--network", &id, "status"]);
    let status = start.elapsed();
    assert!(out.status.success(), "{}", stderr(&out));
    let start = Instant::now();
    signal(&child.0, Signal::SIGTERM);
    assert!(wait_exit(&mut child.0, Duration::from_secs(30)).success());
    let shutdown = start.elapsed();
    eprintln!("measured: with two idle clients connected: status answered in {status:?}; SIGTERM to exit {shutdown:?}");
    wait_no_leftovers(&id);
}

#[test]
fn a_client_is_told_when_its_controller_dies_mid_request() {
    // Ready at its first start; never again after that: a restart waits 60 s for readiness.
    let flaky = r#"
[[service]]
name = "flaky"
command = "sh"
args = ["-c", "if [ -e {dir}/once ]; then exec sleep 1000; fi; touch {dir}/once; exec python3 -m http.server 8000 --bind {ip}"]
ready = { tcp = 8000 }
ready_timeout = "60s"
"#;
    let m = write_manifest("sig-dies", &format!("[network]\nname = \"sig-dies\"\nnodes = 1\n{flaky}"));
    let (mut child, id) = up_cli(&m);
    let client =
        Command::new(BIN).args(["--network", &id, "restart", "node0/flaky"]).stderr(Stdio::piped()).spawn().unwrap();
    let run = run_dir_of(&id);
    wait_until("the restart to spawn the service again", Duration::from_secs(10), || {
        std::fs::read_to_string(run.join("node0/flaky/stdout.log"))
            .is_ok_and(|log| log.matches("running sh").count() >= 2)
    });
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let out = client.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("closed the connection without answering: it exited or was killed"),
        "{}",
        stderr(&out)
    );
    let out = nd(&["--network", &id, "status"]);
    assert!(stderr(&out).contains("no live network has the id or name"), "{}", stderr(&out));
    assert!(nd(&["gc"]).status.success());
    wait_no_leftovers(&id);
}

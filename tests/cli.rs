//! The command line as a user drives it: a controlling `netdriver up` in the background, other
//! invocations talking to it, exit codes, teardown on SIGTERM, and `gc` after a SIGKILL.

use std::process::Command;
use std::time::Duration;

use crate::common::{
    alive, leftovers, manifest, nd, run_dir_of, stderr, stdout, up_cli, wait_exit, wait_no_leftovers, wait_until, BIN,
};

#[test]
fn controller_serves_other_invocations_and_tears_down_on_sigterm() {
    let m = manifest("cli-ops", 2, "");
    let (mut child, id) = up_cli(&m);
    let net = ["--network", "cli-ops"];

    let status = nd(&[&net[..], &["status"]].concat());
    assert!(status.status.success(), "{}", stderr(&status));
    let table = stdout(&status);
    assert!(table.contains("node0") && table.contains("node1") && table.contains("running"), "{table}");
    let header: Vec<&str> = table.lines().nth(1).unwrap_or_default().split_whitespace().collect();
    assert_eq!(header, ["NODE", "IP", "SERVICE", "STATE", "PID"], "no IP6 column without IPv6: {table}");

    let exec = nd(&[
        &net[..],
        &["exec", "node1", "--", "sh", "-c", "curl -sf http://node0:8000/ >/dev/null && hostname && exit 7"],
    ]
    .concat());
    assert_eq!(exec.status.code(), Some(7), "{}", stderr(&exec));
    assert_eq!(stdout(&exec).trim(), "node1");

    for (op, state) in [
        ("stop", "stopped"),
        ("start", "running"),
        ("pause", "paused"),
        ("resume", "running"),
        ("kill", "stopped"),
        ("restart", "running"),
    ] {
        let out = nd(&[&net[..], &[op, "node0/web"]].concat());
        assert!(out.status.success(), "{op}: {}", stderr(&out));
        let json: serde_json::Value =
            serde_json::from_slice(&nd(&[&net[..], &["status", "--json"]].concat()).stdout).unwrap();
        assert_eq!(json["nodes"][0]["services"][0]["state"], state, "after {op}");
    }
    let logs = nd(&[&net[..], &["logs", "node0/web", "--stream", "stderr"]].concat());
    assert!(stdout(&logs).contains("GET / HTTP"), "{}", stdout(&logs));

    // Shaping: bad values are refused by the command line; a kernel without netem says so.
    let bad = nd(&[&net[..], &["qos", "node0", "--loss", "150%"]].concat());
    assert!(stderr(&bad).contains("150% is out of range"), "{}", stderr(&bad));
    let bad = nd(&[&net[..], &["qos", "node0", "--reorder", "10%"]].concat());
    assert!(stderr(&bad).contains("reorder needs a delay"), "{}", stderr(&bad));
    let shaped = nd(&[&net[..], &["qos", "node0", "--to", "node1", "--delay", "10ms"]].concat());
    assert!(shaped.status.success() || stderr(&shaped).contains("modprobe sch_netem"), "{}", stderr(&shaped));
    assert!(nd(&[&net[..], &["qos", "--clear"]].concat()).status.success());

    // Cuts: status lists each, a partition's groups as they were given.
    assert!(nd(&[&net[..], &["partition", "node0", "node1"]].concat()).status.success());
    assert!(nd(&[&net[..], &["block", "node0", "node1"]].concat()).status.success());
    let status = stdout(&nd(&[&net[..], &["status"]].concat()));
    assert!(status.contains("cut (traffic dropped):\n  node0 -> node1\n  node1 -> node0\n"), "{status}");
    let json: serde_json::Value =
        serde_json::from_slice(&nd(&[&net[..], &["status", "--json"]].concat()).stdout).unwrap();
    assert_eq!(json["cuts"][1], serde_json::json!({"from": ["node1"], "to": ["node0"]}), "{json}");
    assert!(nd(&[&net[..], &["heal"]].concat()).status.success());
    assert!(!stdout(&nd(&[&net[..], &["status"]].concat())).contains("cut"));

    let unknown = nd(&[&net[..], &["stop", "node9"]].concat());
    assert_eq!(unknown.status.code(), Some(1));
    assert!(stderr(&unknown).contains("unknown node 'node9'"), "{}", stderr(&unknown));

    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.0.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    assert!(wait_exit(&mut child.0, Duration::from_secs(20)).success());
    wait_no_leftovers(&id);
}

#[test]
fn gc_reclaims_what_a_killed_controller_left() {
    // Services that leave a daemon behind: it escapes its process group and its parent. The
    // second one also overwrites its environment (as gunicorn's setproctitle does), so that no
    // mark netdriver gave it is left: gc must find it by its namespace alone.
    let daemons = r#"
[[service]]
name = "daemon"
command = "sh"
args = ["-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 & exec sleep 1000"]

[[service]]
name = "wiper"
command = "python3"
args = ["-c", """
import os, time
if os.fork() == 0:
    os.setsid()
    stat = open('/proc/self/stat').read()
    fields = stat[stat.rfind(')') + 2:].split()
    start, end = int(fields[47]), int(fields[48])
    with open('/proc/self/mem', 'r+b', 0) as mem:
        mem.seek(start)
        mem.write(bytes(end - start))
    print(os.getpid(), flush=True)
time.sleep(1000)
"""]
"#;
    let m = manifest("cli-gc", 2, daemons);
    let (mut child, id) = up_cli(&m);
    let run = run_dir_of(&id);
    let wipers: Vec<u32> = ["node0", "node1"]
        .iter()
        .map(|node| {
            // The log starts with netdriver's header line; the pid comes last.
            let log = run.join(node).join("wiper/stdout.log");
            let pid = || std::fs::read_to_string(&log).ok()?.lines().last()?.parse::<u32>().ok();
            wait_until("the wiper printed its pid", Duration::from_secs(20), || pid().is_some());
            pid().unwrap()
        })
        .collect();
    for pid in &wipers {
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        assert!(environ.iter().all(|b| *b == 0), "pid {pid} should have wiped its environment");
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert!(!leftovers(&id).is_empty(), "the escaped daemons should still be there before gc");
    assert!(wipers.iter().all(|pid| alive(*pid)), "the wipers should outlive the controller");

    let gc = nd(&["gc"]);
    assert!(gc.status.success(), "{}", stderr(&gc));
    assert!(stdout(&gc).contains(&id), "{}", stdout(&gc));
    wait_no_leftovers(&id);
    wait_until("gc killed the wipers", Duration::from_secs(5), || wipers.iter().all(|pid| !alive(*pid)));
    // Data directories and the nodes' /tmp go (keep_data is false); logs stay.
    for node in ["node0", "node1"] {
        let gone = [run.join(node).join("tmp"), run.join(node).join("web/data"), run.join(node).join("daemon/data")];
        assert!(gone.iter().all(|d| !d.exists()), "gc left one of {gone:?}");
        assert!(run.join(node).join("web/stderr.log").is_file(), "gc removed {node}'s logs");
    }
    assert!(stdout(&gc).contains("director(ies) removed (logs kept)"), "{}", stdout(&gc));
    std::fs::remove_dir_all(run).unwrap();
    let again = nd(&["gc"]);
    assert!(!stdout(&again).contains(&id));
}

#[test]
fn run_passes_the_network_and_the_exit_code() {
    let m = manifest("cli-run", 2, "");
    let script = format!(
        "{BIN} exec node0 -- curl -sf http://node1:8000/ >/dev/null && test -n \"$NETDRIVER_NETWORK\" && exit 3"
    );
    let out = nd(&["run", "-f", m.to_str().unwrap(), "--", "sh", "-c", &script]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let id = stderr(&out).split("NETDRIVER_NETWORK=").nth(1).map(|r| r[..6].to_string()).unwrap();
    wait_no_leftovers(&id);
}

#[test]
fn a_profile_comes_up_from_the_command_line() {
    // The kvstore profile (Tendermint from scripts/install-stack): `run` starts it and waits
    // for the first block; other invocations drive it; a stopped node comes back.
    let json = std::env::temp_dir().join(format!("netdriver-cli-profile-{}.json", std::process::id()));
    let script = format!(
        "{BIN} status --json > {} && {BIN} stop node0/tendermint && {BIN} start node0 && {BIN} status",
        json.display()
    );
    let out = nd(&["run", "--profile", "kvstore", "--nodes", "2", "--", "sh", "-c", &script]);
    assert!(out.status.success(), "{}", stderr(&out));
    let status: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    std::fs::remove_file(&json).unwrap();
    assert_eq!(status["nodes"].as_array().map(Vec::len), Some(2), "{status}");
    assert_eq!(stdout(&out).matches("tendermint  running").count(), 2, "{}", stdout(&out));
    let id = stderr(&out).split("NETDRIVER_NETWORK=").nth(1).map(|r| r[..6].to_string()).unwrap();
    wait_no_leftovers(&id);

    let out = nd(&["up", "--profile", "cassandra"]);
    assert!(stderr(&out).contains("unknown profile 'cassandra'; known: bigchaindb, kvstore"), "{}", stderr(&out));
    let out = nd(&["up", "--profile", "kvstore", "--binary", "tendermint"]);
    assert!(stderr(&out).contains("use PROGRAM=PATH"), "{}", stderr(&out));
    let out = nd(&["up", "--profile", "kvstore", "--binary", "tendermint=/nonexistent/tm"]);
    assert!(stderr(&out).contains("'/nonexistent/tm' not found"), "{}", stderr(&out));
}

#[test]
fn bad_input_fails_with_the_cause() {
    let bad = std::env::temp_dir().join("netdriver-bad.toml");
    std::fs::write(
        &bad,
        "[network]\nnodes = 2\n\n[[service]]\nname = \"x\"\ncommand = \"true\"\nstop_timeout = \"10 parsecs\"\n",
    )
    .unwrap();
    let out = nd(&["up", "-f", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(":7:") && stderr(&out).contains("stop_timeout"), "{}", stderr(&out));

    let missing = manifest("cli-missing", 1, "[[service]]\nname = \"ghost\"\ncommand = \"no-such-program-xyz\"\n");
    let out = nd(&["up", "-f", missing.to_str().unwrap()]);
    assert!(stderr(&out).contains("program 'no-such-program-xyz' not found"), "{}", stderr(&out));

    // Without root's capabilities (as nobody, none inherited), bring-up names what is missing.
    let m = manifest("cli-noroot", 1, "");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--", BIN, "up", "-f"])
        .arg(&m)
        .output()
        .expect("setpriv (util-linux) runs");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("needs CAP_NET_ADMIN, CAP_SYS_ADMIN (run it as root"), "{}", stderr(&out));

    let out = nd(&["status", "--network", "no-such-network"]);
    assert!(stderr(&out).contains("no live network has the id or name 'no-such-network'"), "{}", stderr(&out));
}

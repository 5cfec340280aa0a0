//! Per-node clocks. The wall clock, for every program of a node (static and dynamic C, static
//! Go, their later threads and children, `netdriver exec` one-offs), moves by the node's offset
//! and drift, and changes under running programs; monotonic and boottime move through a time
//! namespace, for programs started after the change; the time zone through TZ. A dead
//! supervisor, a traced program and bad settings are named, and change nothing.

use std::process::Command;
use std::time::Duration;

use crate::common::{
    exec_ok, nd, shell_service, stderr, stdout, teardown, up, up_cli, wait_no_leftovers, wait_until, write_manifest,
};
use netdriver::{ClockSkew, Drift, NetworkSpec, Node, Offset, ServiceSpec};
use nix::time::{clock_gettime, ClockId};

fn host_secs(clock: ClockId) -> f64 {
    let t = clock_gettime(clock).unwrap();
    t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9
}

fn host_now() -> f64 {
    host_secs(ClockId::CLOCK_REALTIME)
}

/// A clock probe of `scripts/build-probes` (which `scripts/test` runs first), in the stack
/// directory: outside /tmp, which the nodes replace, wherever the checkout is.
pub(crate) fn probe(name: &str) -> String {
    let path = netdriver::profile::stack_dir().join("probes").join(name);
    assert!(path.is_file(), "{} is missing: run scripts/build-probes", path.display());
    path.display().to_string()
}

/// The wall-clock readings `argv` prints in `node`, a line each, with the host's clock just
/// before and just after.
fn readings(node: &Node, argv: &[&str]) -> (f64, Vec<f64>, f64) {
    let before = host_now();
    let out = exec_ok(node, argv);
    let after = host_now();
    let values = out.lines().map(|l| l.trim().parse().unwrap_or_else(|_| panic!("{argv:?} printed {out:?}"))).collect();
    (before, values, after)
}

/// Asserts that every reading of `argv` in `node` is within a second of the host's clock
/// plus `offset` seconds.
fn assert_reads(node: &Node, argv: &[&str], offset: f64) {
    let (before, values, after) = readings(node, argv);
    assert!(!values.is_empty(), "{argv:?} printed nothing");
    for value in values {
        // `time()` and the coarse clock truncate: up to a second below.
        assert!(
            value > before + offset - 1.0 && value < after + offset + 1.0,
            "{argv:?} on {} read {value:.3}, {:.3} s from the host's {before:.3}, not {offset} s",
            node.name(),
            value - before,
        );
    }
}

/// `clock` as a process in `node` reads it, in seconds: this test binary runs itself there
/// (see `print_clock_for_parent`), so no interpreter is needed (the netem guest has none).
fn node_secs(node: &Node, clock: &str) -> f64 {
    // Through /proc: the binary's own path may be under the host's /tmp, which nodes do not see.
    let mut cmd = Command::new(format!("/proc/{}/exe", std::process::id()));
    cmd.args(["--exact", "clock::print_clock_for_parent", "--nocapture", "--test-threads=1"]).env(PRINT_CLOCK, clock);
    let out = node.output(&mut cmd).unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let value = text.split("clock=").nth(1).and_then(|rest| rest.split_whitespace().next());
    value.unwrap_or_else(|| panic!("no clock in: {text}")).parse().unwrap()
}

const PRINT_CLOCK: &str = "NETDRIVER_TEST_PRINT_CLOCK";

/// Not a test of its own: prints the clock named in NETDRIVER_TEST_PRINT_CLOCK when
/// [`node_secs`] runs this binary inside a node.
#[test]
fn print_clock_for_parent() {
    let clock = match std::env::var(PRINT_CLOCK).as_deref() {
        Ok("CLOCK_MONOTONIC") => ClockId::CLOCK_MONOTONIC,
        Ok("CLOCK_BOOTTIME") => ClockId::CLOCK_BOOTTIME,
        _ => return,
    };
    println!("clock={}", host_secs(clock));
}

/// The netem guests have no time zone data, coreutils or Python.
fn in_guest() -> bool {
    std::env::var_os("NETDRIVER_GUEST").is_some()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 2.0
}

fn offset(text: &str) -> Offset {
    text.parse().unwrap()
}

#[test]
fn every_program_reads_its_nodes_clocks() {
    let network = up(&NetworkSpec::new("t-clock", 2));
    let node = network.node("node1").unwrap();
    let skew = ClockSkew {
        realtime: offset("+1h"),
        drift: Drift::NONE,
        monotonic: offset("+2h"),
        // A guest has been up for seconds only: a clock cannot go back before boot.
        boottime: if in_guest() { offset("+30s") } else { offset("-10s") },
        tz: (!in_guest()).then(|| "Asia/Tokyo".into()),
    };
    let report = node.configure_clock(skew.clone(), false).unwrap();
    assert_eq!(report, netdriver::ClockReport::default());
    assert_eq!(node.clock(), skew);

    // The wall clock: static Go, static C and dynamic C (every variant: REALTIME, _COARSE,
    // TAI, gettimeofday, time), and on the host coreutils' date.
    let (go, c_static, c_dynamic) =
        (probe("clockprobe-go"), probe("clockprobe-c-static"), probe("clockprobe-c-dynamic"));
    assert_reads(node, &[&go, "now"], 3600.0);
    assert_reads(node, &[&c_static, "all"], 3600.0);
    assert_reads(node, &[&c_dynamic, "all"], 3600.0);
    // A child exec'd by a Go program, and a Go thread.
    assert_reads(node, &[&go, "exec", "/", &c_static, "now"], 3600.0);
    assert_reads(node, &[&go, "thread", "/"], 3600.0);

    let monotonic = node_secs(node, "CLOCK_MONOTONIC");
    assert!(close(monotonic, host_secs(ClockId::CLOCK_MONOTONIC) + 7200.0), "monotonic {monotonic}");
    let boottime = node_secs(node, "CLOCK_BOOTTIME") - skew.boottime.as_nanos() as f64 / 1e9;
    assert!(close(boottime, host_secs(ClockId::CLOCK_BOOTTIME)), "boottime {boottime} less the offset");

    // The other node keeps the host's clocks.
    let other = network.node("node0").unwrap();
    for argv in [vec![go.as_str(), "now"], vec![c_static.as_str(), "all"], vec![c_dynamic.as_str(), "all"]] {
        assert_reads(other, &argv, 0.0);
    }
    assert!(close(node_secs(other, "CLOCK_MONOTONIC"), host_secs(ClockId::CLOCK_MONOTONIC)));
    if !in_guest() {
        assert_reads(node, &["date", "+%s"], 3600.0);
        assert_eq!(exec_ok(node, &["date", "+%Z"]).trim(), "JST");
        assert_eq!(exec_ok(other, &["date", "+%Z"]).trim(), host_date(&["+%Z"]));
    }
    assert_eq!(node.unreached(), Vec::<(String, String)>::new());
    teardown(network);
}

fn host_date(args: &[&str]) -> String {
    let out = Command::new("date").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The last number `service` printed on its standard output.
fn last_reading(node: &Node, service: &str) -> Option<f64> {
    let log = std::fs::read_to_string(node.service(service).unwrap().stdout_log()).ok()?;
    log.lines().filter_map(|l| l.trim().parse().ok()).next_back()
}

#[test]
fn a_change_reaches_running_programs_at_once() {
    let (go, c_static) = (probe("clockprobe-go"), probe("clockprobe-c-static"));
    let service = |name: &str, args: &[&str]| ServiceSpec::new(name, &go).and_then(|s| s.args(args)).unwrap();
    // Started before the change: a Go loop; a Go program that starts a thread, and one that
    // execs a C program, once the file `go` appears in their directory.
    let spec = NetworkSpec::new("t-clock-live", 1)
        .service(service("watch", &["watch", "600"]))
        .service(service("thread", &["thread", "go"]))
        .service(service("child", &["exec", "go", &c_static, "now"]));
    let network = up(&spec);
    network.start().unwrap();
    let node = &network.nodes()[0];
    wait_until("the Go loop prints", Duration::from_secs(10), || last_reading(node, "watch").is_some());
    let near =
        |service: &str, offset: f64| last_reading(node, service).is_some_and(|v| (v - host_now() - offset).abs() < 1.0);
    assert!(near("watch", 0.0), "the Go loop reads {:?} before any change", last_reading(node, "watch"));
    let pid = node.service("watch").unwrap().pid();

    for (setting, secs) in [("+1h", 3600.0), ("-30m", -1800.0)] {
        let report =
            node.configure_clock(ClockSkew { realtime: offset(setting), ..ClockSkew::default() }, false).unwrap();
        assert_eq!(report, netdriver::ClockReport::default(), "a wall clock change needs no restart");
        wait_until(&format!("the running Go loop reads {setting}"), Duration::from_secs(5), || near("watch", secs));
    }
    assert_eq!(node.service("watch").unwrap().pid(), pid, "restarted");
    for name in ["thread", "child"] {
        std::fs::write(node.service(name).unwrap().data_dir().join("go"), "").unwrap();
        wait_until(&format!("{name} reads -30m"), Duration::from_secs(10), || near(name, -1800.0));
    }
    teardown(network);
}

/// `clockprobe samples` output in `node` for `secs` seconds: (host monotonic, node wall
/// clock) pairs, keeping the readings that no preemption blurred (both monotonic reads within
/// 2 ms).
fn samples(node: &Node, secs: u32) -> Vec<(f64, f64)> {
    let out = exec_ok(node, &[&probe("clockprobe-c-static"), "samples", &secs.to_string()]);
    let all: Vec<Vec<f64>> = out.lines().map(|l| l.split(' ').map(|v| v.parse().unwrap()).collect()).collect();
    let kept: Vec<(f64, f64)> =
        all.iter().filter(|s| s[2] - s[0] < 0.002).map(|s| (f64::midpoint(s[0], s[2]), s[1])).collect();
    assert!(kept.len() > all.len() / 2, "{} of {} samples blurred", all.len() - kept.len(), all.len());
    kept
}

/// How fast the node's wall clock ran over `samples`, host seconds being 1.
fn pace(samples: &[(f64, f64)]) -> f64 {
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    (last.1 - first.1) / (last.0 - first.0)
}

#[test]
fn a_drift_runs_the_clock_fast_or_slow_without_a_jump() {
    let network = up(&NetworkSpec::new("t-clock-drift", 1));
    let node = network.node("node0").unwrap();
    let drift = |text: &str| ClockSkew { drift: text.parse().unwrap(), ..ClockSkew::default() };

    node.configure_clock(drift("+100000ppm"), false).unwrap();
    let fast = pace(&samples(node, 10));
    assert!((fast / 1.1 - 1.0).abs() < 0.02, "+100000ppm ran at {fast:.4}, not 1.1 (within 2%)");

    node.configure_clock(drift("-10%"), false).unwrap();
    // A change of drift while a program reads the clock every 20 ms: no step may move the
    // clock further than the faster of the two paces allows (plus the 2 ms of a reading).
    let reader = std::thread::scope(|scope| {
        let reader = scope.spawn(|| samples(node, 8));
        std::thread::sleep(Duration::from_secs(4));
        node.configure_clock(drift("+5%"), false).unwrap();
        reader.join().unwrap()
    });
    for pair in reader.windows(2) {
        let (host, wall) = (pair[1].0 - pair[0].0, pair[1].1 - pair[0].1);
        assert!((wall - host).abs() <= 0.1 * host + 0.004, "a jump: the clock moved {wall:.4} s in {host:.4} s");
    }
    let (slow, after) = reader.split_at(reader.len() / 3);
    let (slow, after) = (pace(slow), pace(&after[after.len() / 2..]));
    let step = reader.windows(2).map(|p| ((p[1].1 - p[0].1) - (p[1].0 - p[0].0)).abs()).fold(0.0, f64::max);
    eprintln!("drift: +10% ran at {fast:.5}, -10% at {slow:.5}, +5% at {after:.5}; largest step off 1:1 {step:.5} s");
    assert!((slow / 0.9 - 1.0).abs() < 0.02, "-10% ran at {slow:.4}, not 0.9");
    assert!((after / 1.05 - 1.0).abs() < 0.02, "+5% ran at {after:.4}, not 1.05");
    teardown(network);
}

#[test]
fn a_running_service_keeps_its_monotonic_clock_until_restarted() {
    let ticker = shell_service(
        "ticker",
        "while true; do cut -d' ' -f1 /proc/uptime > uptime.new && mv uptime.new uptime; sleep 0.1; done",
    );
    let network = up(&NetworkSpec::new("t-clock-run", 1).service(ticker));
    network.start().unwrap();
    let node = &network.nodes()[0];
    let service = node.service("ticker").unwrap();
    let uptime = || -> f64 {
        std::fs::read_to_string(service.data_dir().join("uptime"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0.0)
    };
    wait_until("the ticker writes", Duration::from_secs(5), || uptime() > 0.0);

    let report = node
        .configure_clock(ClockSkew { boottime: Offset::ahead(Duration::from_secs(3600)), ..Default::default() }, false)
        .unwrap();
    assert_eq!(report.restart_needed, vec!["ticker".to_string()]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(close(uptime(), host_secs(ClockId::CLOCK_BOOTTIME)), "the running ticker's clock moved");

    let report = node
        .configure_clock(ClockSkew { boottime: Offset::ahead(Duration::from_secs(3600)), ..Default::default() }, true)
        .unwrap();
    assert_eq!(report.restarted, Vec::<String>::new(), "nothing changed: nothing to restart");
    service.restart().unwrap();
    wait_until("the restarted ticker sees +1h", Duration::from_secs(5), || {
        close(uptime(), host_secs(ClockId::CLOCK_BOOTTIME) + 3600.0)
    });
    teardown(network);
}

/// The pid of the clock supervisor of run `id`.
fn supervisor_of(id: &str) -> i32 {
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(crate::common::record_path(id)).unwrap()).unwrap();
    record["supervisor"][0].as_i64().expect("a supervisor in the record") as i32
}

/// A service that waits for ever (for a file that never comes), with no shell or coreutils.
fn waiter() -> ServiceSpec {
    ServiceSpec::new("waiter", &probe("clockprobe-go")).and_then(|s| s.args(["thread", "never"])).unwrap()
}

#[test]
fn a_dead_supervisor_is_named_and_nothing_is_left() {
    let c_static = probe("clockprobe-c-static");
    let network = up(&NetworkSpec::new("t-clock-dead", 1).service(waiter()));
    let node = &network.nodes()[0];
    node.configure_clock(ClockSkew { realtime: offset("+1h"), ..ClockSkew::default() }, false).unwrap();
    assert_reads(node, &[&c_static, "now"], 3600.0);

    let pid = supervisor_of(network.id());
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
    wait_until("the supervisor is gone", Duration::from_secs(5), || !crate::common::alive(pid as u32));
    let err = node.exec([&c_static, "now"]).unwrap_err().to_string();
    assert!(err.contains(&format!("the clock supervisor of this network (pid {pid}) is gone")), "{err}");
    assert!(err.contains("tear the network down and bring it up again"), "{err}");
    let err = node.service("waiter").unwrap().start().unwrap_err().to_string();
    assert!(err.contains("the clock supervisor of this network"), "{err}");
    teardown(network);
}

#[test]
fn a_traced_program_is_named_in_the_report() {
    let c_static = probe("clockprobe-c-static");
    let network = up(&NetworkSpec::new("t-clock-traced", 1));
    let node = &network.nodes()[0];
    node.configure_clock(ClockSkew { realtime: offset("+1h"), ..ClockSkew::default() }, false).unwrap();
    // strace traces its child, so the supervisor cannot: the child runs on the host's clock.
    let (before, values, after) = readings(node, &["strace", "-f", "-o", "/dev/null", &c_static, "now"]);
    assert!(values[0] > before - 1.0 && values[0] < after + 1.0, "read {} under strace", values[0]);
    let unreached = node.unreached();
    assert_eq!(unreached.len(), 1, "{unreached:?}");
    assert_eq!(unreached[0].0, c_static);
    assert!(
        unreached[0].1.contains("it could not be traced") && unreached[0].1.contains("tracer attached"),
        "{unreached:?}"
    );
    let report = node.configure_clock(ClockSkew { realtime: offset("+2h"), ..ClockSkew::default() }, false).unwrap();
    assert_eq!(report.unreached, unreached);
    teardown(network);
}

#[test]
fn bad_settings_are_refused_and_change_nothing() {
    for (value, message) in [
        ("abc", "invalid clock drift: 'abc': use a signed rate like +200ppm"),
        ("1e9ppm", "a clock drifts by at most 10% (100000ppm)"),
        ("+11%", "a clock drifts by at most 10% (100000ppm)"),
    ] {
        let err = ClockSkew::from_settings([("drift", value)]).unwrap_err().to_string();
        assert!(err.contains(message), "{value}: {err}");
    }
    let network = up(&NetworkSpec::new("t-clock-bad", 1));
    let node = &network.nodes()[0];
    node.configure_clock(ClockSkew { realtime: offset("+1h"), ..ClockSkew::default() }, false).unwrap();
    let before = node.clock();
    let err = Drift::from_ppb(200_000_000).unwrap_err().to_string();
    assert!(err.contains("+200000ppm is too fast or too slow"), "{err}");
    // What the control socket reads is checked the same way.
    let mut request = serde_json::to_value(ClockSkew::default()).unwrap();
    request["drift"] = "+20%".into();
    let err = serde_json::from_value::<ClockSkew>(request).unwrap_err().to_string();
    assert!(err.contains("at most 10%"), "{err}");
    if !in_guest() {
        let err = node.configure_clock(ClockSkew::default().tz("Nowhere/Atlantis"), false).unwrap_err();
        assert!(err.to_string().contains("'Nowhere/Atlantis' is not a zone of /usr/share/zoneinfo"), "{err}");
    }
    let far_back = ClockSkew { boottime: Offset::behind(Duration::from_secs(100 * 365 * 86400)), ..Default::default() };
    let err = node.configure_clock(far_back, false).unwrap_err();
    assert!(err.to_string().contains("for CLOCK_BOOTTIME: the clock would read -"), "{err}");
    assert!(err.to_string().contains("outside the kernel's 0 to 4611686018 s"), "{err}");
    assert_eq!(node.clock(), before);
    assert_reads(node, &[&probe("clockprobe-c-static"), "now"], 3600.0);
    teardown(network);
}

#[test]
fn without_per_node_wall_clocks_programs_run_untraced() {
    let c_static = probe("clockprobe-c-static");
    let mut spec = NetworkSpec::new("t-clock-off", 1);
    spec.wall_clock = false;
    let network = up(&spec.service(waiter()));
    network.start().unwrap();
    let node = &network.nodes()[0];
    let err = node.configure_clock(ClockSkew { realtime: offset("+1h"), ..ClockSkew::default() }, false).unwrap_err();
    assert!(err.to_string().contains("the network runs without per-node wall clocks (wall_clock = false)"), "{err}");
    node.configure_clock(ClockSkew { monotonic: offset("+1h"), ..ClockSkew::default() }, false).unwrap();
    assert_reads(node, &[&c_static, "now"], 0.0);
    // No filter in the node's processes (a node with per-node wall clocks has one: mode 2).
    let pid = node.service("waiter").unwrap().pid().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.lines().any(|l| l == "Seccomp:\t0"), "{status}");
    teardown(network);
}

/// The first number `argv` prints in node `node` of network `network`, through `netdriver exec`.
fn cli_reading(network: &str, node: &str, argv: &[&str]) -> f64 {
    let out = nd(&[&["--network", network, "exec", node, "--"], argv].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out).lines().next().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("{}", stdout(&out)))
}

#[test]
fn the_command_line_sets_clocks_for_every_program_and_leaves_nothing() {
    let go = probe("clockprobe-go");
    let manifest = write_manifest(
        "t-clock-cli",
        &format!(
            "[network]\nname = \"t-clock-cli\"\nnodes = 2\n\n[[service]]\nname = \"waiter\"\ncommand = \"{go}\"\n\
             args = [\"thread\", \"never\"]\n\n[[clock]]\nnode = \"node1\"\nrealtime = \"+1h\"\n"
        ),
    );
    let (mut controller, id) = up_cli(&manifest);
    let near = |value: f64, offset: f64| (value - host_now() - offset).abs() < 1.0;
    // `netdriver exec` one-offs, set by the manifest.
    let value = cli_reading("t-clock-cli", "node1", &[&go, "now"]);
    assert!(near(value, 3600.0), "node1 read {value:.3}");
    let value = cli_reading("t-clock-cli", "node0", &[&go, "now"]);
    assert!(near(value, 0.0), "node0 read {value:.3}");

    let out = nd(&["--network", "t-clock-cli", "clock", "node1", "--realtime", "-2h", "--drift", "+100000ppm"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "", "a wall clock change needs no restart");
    let value = cli_reading("t-clock-cli", "node1", &[&go, "now"]);
    assert!(near(value, -7200.0), "node1 read {value:.3} after --realtime -2h");
    for (drift, message) in [("abc", "invalid clock drift: 'abc'"), ("1e9ppm", "a clock drifts by at most 10%")] {
        let out = nd(&["--network", "t-clock-cli", "clock", "node1", "--drift", drift]);
        assert!(!out.status.success() && stderr(&out).contains(message), "--drift {drift}: {}", stderr(&out));
    }
    let value = cli_reading("t-clock-cli", "node1", &[&go, "now"]);
    assert!(near(value, -7200.0), "node1 read {value:.3} after refused changes");

    // A controller killed outright takes its supervisor along; gc reclaims what is left.
    let supervisor = supervisor_of(&id);
    controller.0.kill().unwrap();
    controller.0.wait().unwrap();
    wait_until("the supervisor dies with its controller", Duration::from_secs(5), || {
        !crate::common::alive(supervisor as u32)
    });
    let gc = nd(&["gc"]);
    assert!(gc.status.success(), "{}", stderr(&gc));
    wait_no_leftovers(&id);
    std::fs::remove_file(manifest).unwrap();
}

#[test]
fn signals_sent_while_a_program_is_put_under_the_clock_arrive() {
    // `start` returns once the program is exec'd, while the supervisor may still be at work
    // on it; a pause (SIGSTOP) or stop (SIGTERM) right then must reach it all the same.
    let network = up(&NetworkSpec::new("t-clock-signals", 1).service(waiter()));
    let node = &network.nodes()[0];
    node.configure_clock(ClockSkew { realtime: offset("+1h"), ..ClockSkew::default() }, false).unwrap();
    let service = node.service("waiter").unwrap();
    for round in 0..30 {
        service.start().unwrap();
        service.pause().unwrap();
        let pid = service.pid().unwrap();
        wait_until(&format!("round {round}: the paused program stops"), Duration::from_secs(5), || {
            crate::common::process_state(pid) == Some('T')
        });
        service.kill().unwrap();
    }
    assert_eq!(node.unreached(), Vec::<(String, String)>::new());
    teardown(network);
}

#[test]
fn a_missing_supervisor_program_is_refused_before_anything_is_made() {
    let manifest = write_manifest("t-clock-nosup", "[network]\nname = \"t-clock-nosup\"\nnodes = 1\n");
    let before = crate::common::uplinks();
    for (value, phrase) in [
        ("/nonexistent/netdriver", "'/nonexistent/netdriver'"),
        ("no-such-supervisor", "'no-such-supervisor'"),
        ("[]", "the list is empty"),
        ("[1]", "is not a JSON list of strings"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_netdriver"))
            .args(["run", "-f", manifest.to_str().unwrap(), "--", "true"])
            .env("NETDRIVER_SUPERVISOR", value)
            .output()
            .unwrap();
        let err = stderr(&out);
        assert!(out.status.code() == Some(1) && err.contains(phrase), "{value}: {err}");
        assert!(err.contains("NETDRIVER_SUPERVISOR"), "{value}: {err}");
        crate::common::assert_failed_bringup_left_nothing("t-clock-nosup", &before);
    }
    std::fs::remove_file(manifest).unwrap();
}

#[test]
fn a_program_killed_while_put_under_the_clock_is_reaped() {
    // A SIGKILL or SIGTERM right after a start can land while the supervisor holds the new
    // program, or while the exec waits for the supervisor; the supervisor must wait for the
    // dead tracee, or its parent could never reap it.
    // The shell execs again at once: a signal often lands while that exec waits.
    let network = up(&NetworkSpec::new("t-clock-killed", 1).service(shell_service("waiter", "exec sleep 1000")));
    let node = &network.nodes()[0];
    let service = node.service("waiter").unwrap();
    // A hang here is the failure: a watchdog ends the test binary rather than let it hang.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watched = done.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(60));
        if !watched.load(std::sync::atomic::Ordering::SeqCst) {
            eprintln!(
                "a_program_killed_while_put_under_the_clock_is_reaped: 200 starts and kills or stops hung for 60 s"
            );
            std::process::abort();
        }
    });
    for round in 0..200 {
        service.start().unwrap();
        if round % 2 == 0 { service.kill() } else { service.stop() }.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(node.unreached(), Vec::<(String, String)>::new());
    teardown(network);
}

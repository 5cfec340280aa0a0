//! Per-node clocks: monotonic and boottime through a time namespace, the wall clock through
//! libfaketime, the time zone through TZ; running services keep their clocks until restarted;
//! Go programs are reported as out of libfaketime's reach; bad settings change nothing.

use std::process::Command;
use std::time::Duration;

use crate::common::{exec_ok, shell_service, teardown, up, wait_until};
use netdriver::{ClockSkew, NetworkSpec, Node, Offset, ServiceSpec};
use nix::time::{clock_gettime, ClockId};

fn host_secs(clock: ClockId) -> f64 {
    let t = clock_gettime(clock).unwrap();
    t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9
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

/// The guest kernels have neither libfaketime nor time zone data: there, only the time
/// namespace is tested.
fn in_guest() -> bool {
    std::env::var_os("NETDRIVER_GUEST").is_some()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 2.0
}

#[test]
fn each_clock_moves_by_its_offset() {
    let network = up(&NetworkSpec::new("t-clock", 2));
    let node = network.node("node1").unwrap();
    let skew = ClockSkew {
        realtime: if in_guest() { Offset::ZERO } else { "+1h".parse().unwrap() },
        monotonic: "+2h".parse().unwrap(),
        // A guest has been up for seconds only: a clock cannot go back before boot.
        boottime: if in_guest() { "+30s".parse().unwrap() } else { "-10s".parse().unwrap() },
        tz: (!in_guest()).then(|| "Asia/Tokyo".into()),
    };
    let report = node.configure_clock(skew.clone(), false).unwrap();
    assert_eq!(report, netdriver::ClockReport::default());
    assert_eq!(node.clock(), skew);

    let monotonic = node_secs(node, "CLOCK_MONOTONIC");
    assert!(close(monotonic, host_secs(ClockId::CLOCK_MONOTONIC) + 7200.0), "monotonic {monotonic}");
    let boottime = node_secs(node, "CLOCK_BOOTTIME") - skew.boottime.as_nanos() as f64 / 1e9;
    assert!(close(boottime, host_secs(ClockId::CLOCK_BOOTTIME)), "boottime {boottime} less the offset");
    if in_guest() {
        return teardown(network);
    }
    let wall: f64 = exec_ok(node, &["date", "+%s"]).trim().parse().unwrap();
    assert!(close(wall, host_secs(ClockId::CLOCK_REALTIME) + 3600.0), "wall clock {wall}");
    assert_eq!(exec_ok(node, &["date", "+%Z"]).trim(), "JST");

    // The other node keeps the host's clocks.
    let other = network.node("node0").unwrap();
    assert!(close(node_secs(other, "CLOCK_MONOTONIC"), host_secs(ClockId::CLOCK_MONOTONIC)));
    assert_eq!(exec_ok(other, &["date", "+%Z"]).trim(), exec_ok_host(&["date", "+%Z"]));
    teardown(network);
}

fn exec_ok_host(argv: &[&str]) -> String {
    let out = std::process::Command::new(argv[0]).args(&argv[1..]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_running_service_keeps_its_clock_until_restarted() {
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

    service.restart().unwrap();
    wait_until("the restarted ticker sees +1h", Duration::from_secs(5), || {
        close(uptime(), host_secs(ClockId::CLOCK_BOOTTIME) + 3600.0)
    });
    teardown(network);
}

#[test]
fn go_programs_are_reported_and_bad_settings_change_nothing() {
    if in_guest() {
        return; // no etcd there
    }
    let etcd = ServiceSpec::new("etcd", "etcd").unwrap();
    let network = up(&NetworkSpec::new("t-clock-go", 1).service(etcd));
    let node = &network.nodes()[0];
    let report = node.configure_clock(ClockSkew::offset("+1d".parse().unwrap()), false).unwrap();
    assert_eq!(report.wall_clock_unchanged.len(), 1, "{report:?}");
    assert!(report.wall_clock_unchanged[0].1.contains("Go program"), "{report:?}");

    let before = node.clock();
    let err = node.configure_clock(ClockSkew::default().tz("Nowhere/Atlantis"), false).unwrap_err();
    assert!(err.to_string().contains("'Nowhere/Atlantis' is not a zone of /usr/share/zoneinfo"), "{err}");
    let far_back = ClockSkew { boottime: Offset::behind(Duration::from_secs(100 * 365 * 86400)), ..Default::default() };
    let err = node.configure_clock(far_back, false).unwrap_err();
    assert!(err.to_string().contains("for CLOCK_BOOTTIME: the clock would read -"), "{err}");
    assert!(err.to_string().contains("outside the kernel's 0 to 4611686018 s"), "{err}");
    assert_eq!(node.clock(), before);
    teardown(network);
}

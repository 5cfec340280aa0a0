//! Link shaping. On any kernel: invalid values and a missing netem are reported and change
//! nothing. On a kernel with netem (the QEMU guest that `scripts/test` boots, which sets
//! NETDRIVER_GUEST): measured delay, loss, rate, a per-pair delay matrix, jitter, and clear.
//!
//! Emulation is noisy, but only ever in one direction: netem holds a packet for at least its
//! delay, and a stalled emulator only adds to that. So a delay is read from a low percentile of
//! many pings after a warm-up, and compared with a calibration through the very same qdiscs
//! (1 ms of delay) measured in the same test, which carries netem's own timer overhead under
//! emulation; the tolerance grows with the calibration's spread. A fault schedule of delay and
//! loss spikes gives every node its shaping back.

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::{exec, teardown, up, wait_until};
use netdriver::nemesis::{self, FaultKind, NemesisSpec};
use netdriver::profile::{Kvstore, Profile};
use netdriver::{
    Actor, Cancel, Direction, Error, EventKind, Loss, Network, NetworkSpec, Node, Percent, Qos, QosRule, QosTarget,
};

fn delay(ms: u64) -> Qos {
    Qos { delay: Duration::from_millis(ms), ..Qos::default() }
}

fn node(name: &str, direction: Direction) -> QosTarget {
    QosTarget::node(name, direction)
}

/// Whether this kernel has netem; in the guest it must.
fn netem_here(network: &Network) -> bool {
    match network.configure_qos(&node("node0", Direction::Receive), delay(1)) {
        Ok(()) => {
            network.clear_qos().unwrap();
            true
        }
        Err(e) if std::env::var_os("NETDRIVER_GUEST").is_none() => {
            eprintln!("skipped here: {e}; scripts/test runs this in a guest kernel with netem");
            false
        }
        Err(e) => panic!("the guest kernel must have netem: {e}"),
    }
}

/// Round-trip times of pings, in ms, sorted.
struct Rtts(Vec<f64>);

impl Rtts {
    /// `count` pings from `from` to `to`'s IPv4 address, after a warm-up (the first packets
    /// under emulation are slow).
    fn measure(network: &Network, from: &str, to: &str, count: usize) -> Rtts {
        let to_ip = network.node(to).unwrap().ip().to_string();
        Rtts::measure_to(network, from, &to_ip, count)
    }

    /// The same to address `to` (IPv4 or IPv6).
    fn measure_to(network: &Network, from: &str, to: &str, count: usize) -> Rtts {
        let a = network.node(from).unwrap();
        exec(a, &["ping", "-c", "3", "-W", "2", to]);
        let out = exec(a, &["ping", "-c", &count.to_string(), "-i", "0.05", "-W", "2", to]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut v: Vec<f64> =
            text.lines().filter_map(|l| l.split("time=").nth(1)?.split_whitespace().next()?.parse().ok()).collect();
        assert!(v.len() * 2 > count, "only {} of {count} pings from {from} to {to} answered", v.len());
        v.sort_by(f64::total_cmp);
        Rtts(v)
    }

    /// The `p`-th quantile (0 to 1), by nearest rank.
    fn quantile(&self, p: f64) -> f64 {
        self.0[((self.0.len() - 1) as f64 * p).round() as usize]
    }

    /// The estimate of the fixed part: the 10th percentile.
    fn fixed(&self) -> f64 {
        self.quantile(0.1)
    }

    fn median(&self) -> f64 {
        self.quantile(0.5)
    }

    fn describe(&self) -> String {
        format!("p10 {:.2} / p50 {:.2} / p90 {:.2} ms", self.fixed(), self.median(), self.quantile(0.9))
    }
}

/// Asserts that `shaped` shows `added` ms more round trip than `calibration`, which crossed the
/// same qdiscs with `calibrated` ms: both estimated by their 10th percentiles, within 4 ms plus
/// twice the calibration's own spread (median less 10th percentile).
fn assert_added(what: &str, calibration: &Rtts, calibrated: f64, shaped: &Rtts, added: f64) {
    let tolerance = 4.0 + 2.0 * (calibration.median() - calibration.fixed());
    let want = calibration.fixed() - calibrated + added;
    eprintln!(
        "measured: {what}: {} (calibration {}; want p10 {want:.2} ± {tolerance:.2} ms)",
        shaped.describe(),
        calibration.describe()
    );
    assert!(
        (shaped.fixed() - want).abs() <= tolerance,
        "{what}: p10 {:.2} ms, want {want:.2} ± {tolerance:.2} ms",
        shaped.fixed()
    );
}

#[test]
fn invalid_values_and_unknown_nodes_change_nothing() {
    let network = up(&NetworkSpec::new("t-qos-bad", 2));
    let bad = [
        (Qos { loss: Loss::Random { percent: Percent(150.0), correlation: Percent::ZERO }, ..delay(10) }, "loss"),
        (
            Qos {
                reorder: netdriver::shaping::Reorder { percent: Percent(10.0), ..Default::default() },
                ..Qos::default()
            },
            "reorder needs a delay",
        ),
        (Qos { limit: Some(0), ..delay(10) }, "limit"),
    ];
    for (qos, phrase) in bad {
        let err = network.configure_qos(&node("node0", Direction::Both), qos).unwrap_err();
        assert!(err.to_string().contains(phrase), "{err}");
    }
    let unknown = network.configure_qos(&node("node9", Direction::Send), delay(10));
    assert!(matches!(unknown, Err(Error::UnknownNode { .. })), "{unknown:?}");
    let same = network.configure_qos(&QosTarget::pair("node0", "0"), delay(10)).unwrap_err();
    assert!(same.to_string().contains("same node"), "{same}");
    teardown(network);
}

#[test]
fn a_missing_netem_is_named_with_the_fix() {
    let network = up(&NetworkSpec::new("t-qos-nonetem", 2));
    if std::env::var_os("NETDRIVER_GUEST").is_some() {
        return teardown(network); // the guest kernel has netem
    }
    let has_netem = std::fs::read_to_string("/proc/modules").unwrap_or_default().contains("sch_netem");
    match network.configure_qos(&node("node1", Direction::Receive), delay(100)) {
        Err(Error::KernelFeature { feature, fix }) => {
            assert!(feature.contains("netem") && fix.contains("modprobe sch_netem"), "{feature}: {fix}");
            let rtt = Rtts::measure(&network, "node0", "node1", 5).median();
            assert!(rtt < 20.0, "the failed call changed the link: {rtt} ms");
        }
        Ok(()) => assert!(has_netem, "netem worked, so the kernel has it"),
        Err(e) => panic!("unexpected error: {e}"),
    }
    teardown(network);
}

#[test]
fn a_nemesis_of_spikes_puts_the_shaping_back() {
    let network = up(&NetworkSpec::new("t-qos-nemesis", 3));
    if !netem_here(&network) {
        return teardown(network);
    }
    // A shaping of node1's own, which the spikes on node1 replace and must give back.
    let before = QosRule { target: node("node1", Direction::Send), qos: delay(7) };
    network.configure_qos(&before.target, before.qos).unwrap();
    let ms = Duration::from_millis;
    let spec =
        NemesisSpec::new(2).faults([FaultKind::Qos]).interval(ms(100), ms(200)).hold(ms(200), ms(300)).length(ms(3000));
    let plan = nemesis::check(&network, &spec).unwrap();
    assert!(plan.faults.iter().any(|f| f.fault.node() == Some("node1")), "no spike on node1:\n{plan}");
    let history = nemesis::run(&network, &spec, &Cancel::new()).unwrap();
    assert_eq!(history.faults.len(), plan.faults.len());
    assert!(history.faults.iter().all(|f| f.error.is_none()), "{history}");
    let events = network.events().unwrap();
    let spikes = events.iter().filter(|e| e.kind == EventKind::Qos && e.by == Actor::Nemesis).count();
    assert!(spikes >= plan.faults.len(), "{spikes} spikes for {} faults", plan.faults.len());
    assert_eq!(network.qos_rules(), vec![before]);
    teardown(network);
}

#[test]
fn delay_per_direction_adds_up_and_clear_restores() {
    let network = up(&NetworkSpec::new("t-qos-delay", 2));
    if !netem_here(&network) {
        return teardown(network);
    }
    let base = Rtts::measure(&network, "node0", "node1", 20);
    let node1 = |direction| node("node1", direction);
    network.configure_qos(&node1(Direction::Both), delay(1)).unwrap();
    let calibration = Rtts::measure(&network, "node0", "node1", 30);
    network.configure_qos(&node1(Direction::Both), delay(50)).unwrap();
    let both = Rtts::measure(&network, "node0", "node1", 30);
    assert_added("50 ms each way", &calibration, 2.0, &both, 100.0);
    network.configure_qos(&node1(Direction::Receive), delay(100)).unwrap();
    let mixed = Rtts::measure(&network, "node0", "node1", 30);
    assert_added("100 ms in + 50 ms out", &calibration, 2.0, &mixed, 150.0);
    network.clear_qos().unwrap();
    let cleared = Rtts::measure(&network, "node0", "node1", 20);
    eprintln!("measured: plain {}; after clear {}", base.describe(), cleared.describe());
    let tolerance = 3.0 + 2.0 * (base.median() - base.fixed());
    assert!(cleared.fixed() <= base.fixed() + tolerance, "clear left p10 {:.2} ms", cleared.fixed());
    teardown(network);
}

#[test]
fn loss_stays_within_binomial_bounds() {
    let network = up(&NetworkSpec::new("t-qos-loss", 2));
    if !netem_here(&network) {
        return teardown(network);
    }
    let lossy = Qos { loss: Loss::Random { percent: Percent(30.0), correlation: Percent::ZERO }, ..Qos::default() };
    network.configure_qos(&node("node1", Direction::Receive), lossy).unwrap();
    let (a, b) = (network.node("node0").unwrap(), network.node("node1").unwrap());
    let n = 300;
    let out = exec(a, &["ping", "-c", &n.to_string(), "-i", "0.02", "-W", "2", &b.ip().to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    let answered = text.lines().filter(|l| l.contains("time=")).count() as f64;
    let lost = f64::from(n) - answered;
    eprintln!("measured: 30% loss: {lost} of {n} pings lost");
    // 30% of 300: mean 90, standard deviation ~7.9; allow 4 of them.
    assert!((lost - 90.0).abs() < 32.0, "lost {lost} of {n} with 30% loss");
    teardown(network);
}

/// Shapes each (a, b, ms) pair both ways, calibrates on the first pair at 1 ms, and checks
/// that every (from, to, rtt) round trip adds what it should: over IPv4, and over IPv6 too in
/// a dual-stack network (the lab picks senders by port, whatever the protocol).
fn check_pair_delays(network: &Network, pairs: &[(&str, &str, u64)], expected: &[(&str, &str, f64)]) {
    let set = |ms: Option<u64>| {
        for &(a, b, d) in pairs {
            network.configure_qos(&QosTarget::both_ways(a, b), delay(ms.unwrap_or(d))).unwrap();
        }
    };
    set(Some(1));
    let calibration = Rtts::measure(network, pairs[0].0, pairs[0].1, 30);
    set(None);
    for &(a, b, rtt) in expected {
        let shaped = Rtts::measure(network, a, b, 20);
        assert_added(&format!("pair {a}-{b}"), &calibration, 2.0, &shaped, rtt);
        if let Some(ip6) = network.node(b).unwrap().ip6() {
            let shaped = Rtts::measure_to(network, a, &ip6.to_string(), 20);
            assert_added(&format!("pair {a}-{b} over IPv6"), &calibration, 2.0, &shaped, rtt);
        }
    }
}

#[test]
fn pairs_get_their_own_delays() {
    let network = up(&NetworkSpec { ipv6: true, ..NetworkSpec::new("t-qos-pairs", 3) });
    if !netem_here(&network) {
        return teardown(network);
    }
    check_pair_delays(
        &network,
        &[("node0", "node1", 20), ("node0", "node2", 50), ("node1", "node2", 80)],
        &[("node0", "node1", 40.0), ("node0", "node2", 100.0), ("node1", "node2", 160.0), ("node2", "node1", 160.0)],
    );
    teardown(network);
}

#[test]
fn pairs_are_shaped_across_eleven_hundred_nodes() {
    // More nodes than a bridge has ports; the permanent neighbour entries (2N + 2) leave the
    // kernel's neighbour table room on this kernel too.
    let network = up(&NetworkSpec::new("t-qos-scale", 1100));
    if !netem_here(&network) {
        return teardown(network);
    }
    crate::scale::assert_permanent_entries_leave_room(&network.nodes()[0]);
    check_pair_delays(
        &network,
        &[("node0", "node1099", 30), ("node0", "node550", 10)],
        &[("node0", "node1099", 60.0), ("node0", "node550", 20.0), ("node1099", "node0", 60.0)],
    );
    teardown(network);
}

#[test]
fn jitter_spreads_the_delay() {
    let network = up(&NetworkSpec::new("t-qos-jitter", 2));
    if !netem_here(&network) {
        return teardown(network);
    }
    let target = node("node1", Direction::Receive);
    network.configure_qos(&target, delay(1)).unwrap();
    let calibration = Rtts::measure(&network, "node0", "node1", 30);
    let jittery = Qos { jitter: Duration::from_millis(20), distribution: netdriver::Distribution::Normal, ..delay(60) };
    network.configure_qos(&target, jittery).unwrap();
    let shaped = Rtts::measure(&network, "node0", "node1", 40);
    let spread = shaped.quantile(0.9) - shaped.quantile(0.1);
    eprintln!("measured: 60 ms ± 20 ms normal: {} (calibration {})", shaped.describe(), calibration.describe());
    // A normal distribution with sd 20 ms spans 51 ms between its 10th and 90th percentiles.
    assert!(spread > 25.0, "jitter 20 ms gave a p10-p90 spread of {spread:.1} ms");
    // The median of 40 draws is within 12 ms (3 standard errors) of the mean.
    let want = calibration.median() - 1.0 + 60.0;
    let tolerance = 12.0 + 2.0 * (calibration.median() - calibration.fixed());
    assert!(
        (shaped.median() - want).abs() < tolerance,
        "median {:.1} ms, want {want:.1} ± {tolerance:.1}",
        shaped.median()
    );
    teardown(network);
}

#[test]
fn rate_limits_throughput_within_five_percent() {
    let network = up(&NetworkSpec::new("t-qos-rate", 1));
    if !netem_here(&network) {
        return teardown(network);
    }
    let rate: netdriver::Rate = "8mbit".parse().unwrap();
    network.configure_qos(&node("node0", Direction::Send), Qos { rate: Some(rate), ..Qos::default() }).unwrap();
    // The node streams zeros to the host; after a second's warm-up, the host counts what
    // arrives in each of 20 windows of 250 ms. A stalled emulator delays some bytes into a
    // later window (one low window, then one high), so the median window is the rate.
    let listener = TcpListener::bind((network.host_ip(), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!("nc {} {port} < /dev/zero", network.host_ip());
    let mut sender = network.nodes()[0].spawn(Command::new("sh").args(["-c", &script])).unwrap();
    let (mut stream, _) = listener.accept().unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut read = |until: Instant| {
        let mut n = 0;
        while Instant::now() < until {
            match stream.read(&mut buf) {
                Ok(got) => n += got,
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(e) => panic!("reading the stream: {e}"),
            }
        }
        n
    };
    let window = Duration::from_millis(250);
    let mut end = Instant::now() + Duration::from_secs(1);
    read(end);
    let mut rates: Vec<f64> = (0..20)
        .map(|_| {
            end += window;
            read(end) as f64 * 8.0 / window.as_secs_f64()
        })
        .collect();
    let _ = sender.kill();
    let _ = sender.wait();
    rates.sort_by(f64::total_cmp);
    let (low, median, high) = (rates[0], rates[rates.len() / 2], rates[rates.len() - 1]);
    // tbf counts whole frames: 1514 bytes carry 1448 bytes of TCP payload (MSS with timestamps).
    let goodput = rate.bits_per_sec() as f64 * 1448.0 / 1514.0;
    eprintln!(
        "measured: rate 8mbit: median of 20 windows {:.3} Mbit/s of payload (want {:.3}; windows from {:.3} to {:.3})",
        median / 1e6,
        goodput / 1e6,
        low / 1e6,
        high / 1e6
    );
    assert!((median / goodput - 1.0).abs() < 0.05, "rate 8mbit gave {:.3} Mbit/s of payload", median / 1e6);
    teardown(network);
}

/// A GET of `path` on port 26657 of `node`, from the host: the body, or `None`.
fn rpc(node: &Node, path: &str) -> Option<String> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect_timeout(&(node.ip(), 26657).into(), Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", node.ip()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

/// The fastest of five TCP handshakes from the host with `node`'s RPC port.
fn handshake(node: &Node) -> Duration {
    (0..5)
        .map(|_| {
            let start = Instant::now();
            std::net::TcpStream::connect_timeout(&(node.ip(), 26657).into(), Duration::from_secs(5)).unwrap();
            start.elapsed()
        })
        .min()
        .expect("five handshakes")
}

#[test]
fn a_consensus_network_commits_through_a_slow_node() {
    // Tendermint's kvstore (static Go, from scripts/install-stack; scripts/test copies it
    // into the guest).
    let kvstore = match Kvstore::locate(None) {
        Ok(kvstore) => kvstore,
        Err(e) if std::env::var_os("NETDRIVER_GUEST").is_none() => return eprintln!("skipped here: {e}"),
        Err(e) => panic!("the guest needs tendermint: {e}"),
    };
    let network = kvstore.launch("t-qos-kv", 3).unwrap();
    if !netem_here(&network) {
        return;
    }
    let [_, node1, node2] = network.nodes() else { unreachable!("three nodes") };
    network.configure_qos(&node("node2", Direction::Both), delay(150)).unwrap();
    let (slow, fast) = (handshake(node2), handshake(node1));
    eprintln!("measured: fastest of 5 TCP handshakes from the host: node2 (150 ms each way) {slow:?}, node1 {fast:?}");
    // The SYN waits 150 ms on the way in, the SYN-ACK 150 ms on the way out.
    assert!(slow >= Duration::from_millis(300), "a handshake with node2 took {slow:?}");
    assert!(slow < fast + Duration::from_millis(350), "a handshake with node2 took {slow:?} (node1: {fast:?})");

    // A transaction sent through the slow node commits, and every node has it.
    let answer = rpc(node2, "/broadcast_tx_commit?tx=%22slow=yes%22").expect("an answer from node2");
    assert!(answer.contains("\"height\"") && !answer.contains("\"error\""), "{answer}");
    for node in network.nodes() {
        wait_until(&format!("{} has the key", node.name()), Duration::from_secs(30), || {
            rpc(node, "/abci_query?data=%22slow%22").is_some_and(|a| a.contains("\"eWVz\""))
        });
    }
    network.down().unwrap();
}

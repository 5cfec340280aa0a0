//! Link shaping. On any kernel: invalid values and a missing netem are reported and change
//! nothing. On a kernel with netem (the QEMU guest that `scripts/test` boots, which sets
//! NETDRIVER_GUEST): measured delay, loss, rate, a per-pair delay matrix, jitter, and clear.

mod common;

use std::io::Read;
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{exec, teardown, up};
use netdriver::{Direction, Error, Loss, Network, NetworkSpec, Percent, Qos};

fn delay(ms: u64) -> Qos {
    Qos { delay: Duration::from_millis(ms), ..Qos::default() }
}

/// Whether this kernel has netem; in the guest it must.
fn netem_here(network: &Network) -> bool {
    match network.configure_qos("node0", Direction::Receive, delay(1)) {
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

/// Round-trip times in ms of `count` pings from `from` to `to`, after a warm-up (ARP crosses
/// netem too, and the first packets under emulation are slow).
fn rtts(network: &Network, from: &str, to: &str, count: usize) -> Vec<f64> {
    let (a, b) = (network.node(from).unwrap(), network.node(to).unwrap());
    exec(a, &["ping", "-c", "3", "-W", "2", &b.ip().to_string()]);
    let out = exec(a, &["ping", "-c", &count.to_string(), "-i", "0.05", "-W", "2", &b.ip().to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines().filter_map(|l| l.split("time=").nth(1)?.split_whitespace().next()?.parse().ok()).collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty(), "no ping answered");
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
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
        let err = network.configure_qos("node0", Direction::Both, qos).unwrap_err();
        assert!(err.to_string().contains(phrase), "{err}");
    }
    assert!(matches!(network.configure_qos("node9", Direction::Send, delay(10)), Err(Error::UnknownNode { .. })));
    assert!(network.configure_pair_qos("node0", "0", delay(10)).unwrap_err().to_string().contains("same node"));
    teardown(network);
}

#[test]
fn a_missing_netem_is_named_with_the_fix() {
    let network = up(&NetworkSpec::new("t-qos-nonetem", 2));
    if std::env::var_os("NETDRIVER_GUEST").is_some() {
        return teardown(network); // the guest kernel has netem
    }
    let has_netem = std::fs::read_to_string("/proc/modules").unwrap_or_default().contains("sch_netem");
    match network.configure_qos("node1", Direction::Receive, delay(100)) {
        Err(Error::KernelFeature { feature, fix }) => {
            assert!(feature.contains("netem") && fix.contains("modprobe sch_netem"), "{feature}: {fix}");
            let rtt = median(rtts(&network, "node0", "node1", 5));
            assert!(rtt < 20.0, "the failed call changed the link: {rtt} ms");
        }
        Ok(()) => assert!(has_netem, "netem worked, so the kernel has it"),
        Err(e) => panic!("unexpected error: {e}"),
    }
    teardown(network);
}

#[test]
fn delay_per_direction_gives_twice_the_rtt_and_clear_restores() {
    let network = up(&NetworkSpec::new("t-qos-delay", 2));
    if !netem_here(&network) {
        return teardown(network);
    }
    let base = median(rtts(&network, "node0", "node1", 10));
    network.configure_qos("node1", Direction::Both, delay(50)).unwrap();
    let rtt = median(rtts(&network, "node0", "node1", 20));
    eprintln!("measured: baseline RTT {base:.2} ms; 50 ms each way: median RTT {rtt:.2} ms");
    assert!((rtt - 100.0).abs() < 8.0, "50 ms each way gave a median RTT of {rtt} ms");
    network.configure_qos("node1", Direction::Receive, delay(100)).unwrap();
    let rtt = median(rtts(&network, "node0", "node1", 20));
    eprintln!("measured: 100 ms in + 50 ms out: median RTT {rtt:.2} ms");
    assert!((rtt - 150.0).abs() < 8.0, "100 ms in + 50 ms out gave {rtt} ms");
    network.clear_qos().unwrap();
    let cleared = median(rtts(&network, "node0", "node1", 10));
    eprintln!("measured: after clear: median RTT {cleared:.2} ms");
    assert!(cleared < base + 5.0, "clear left {cleared} ms (baseline {base} ms)");
    teardown(network);
}

#[test]
fn loss_stays_within_binomial_bounds() {
    let network = up(&NetworkSpec::new("t-qos-loss", 2));
    if !netem_here(&network) {
        return teardown(network);
    }
    let lossy = Qos { loss: Loss::Random { percent: Percent(30.0), correlation: Percent::ZERO }, ..Qos::default() };
    network.configure_qos("node1", Direction::Receive, lossy).unwrap();
    let n = 300;
    let answered = rtts(&network, "node0", "node1", n).len() as f64;
    let lost = n as f64 - answered;
    eprintln!("measured: 30% loss: {lost} of {n} pings lost");
    // 30% of 300: mean 90, standard deviation ~7.9; allow 4 of them.
    assert!((lost - 90.0).abs() < 32.0, "lost {lost} of {n} with 30% loss");
    teardown(network);
}

#[test]
fn pairs_get_their_own_delays() {
    let network = up(&NetworkSpec::new("t-qos-pairs", 3));
    if !netem_here(&network) {
        return teardown(network);
    }
    for (a, b, ms) in [("node0", "node1", 20), ("node0", "node2", 50), ("node1", "node2", 80)] {
        network.configure_pair_qos_both(a, b, delay(ms)).unwrap();
    }
    for (a, b, ms) in
        [("node0", "node1", 40.0), ("node0", "node2", 100.0), ("node1", "node2", 160.0), ("node2", "node1", 160.0)]
    {
        let rtt = median(rtts(&network, a, b, 15));
        eprintln!("measured: pair {a}-{b} ({ms} ms expected): median RTT {rtt:.2} ms");
        assert!((rtt - ms).abs() < 8.0, "{a} to {b}: {rtt} ms, expected {ms}");
    }
    teardown(network);
}

#[test]
fn jitter_spreads_the_delay() {
    let network = up(&NetworkSpec::new("t-qos-jitter", 2));
    if !netem_here(&network) {
        return teardown(network);
    }
    let jittery = Qos { jitter: Duration::from_millis(20), distribution: netdriver::Distribution::Normal, ..delay(60) };
    network.configure_qos("node1", Direction::Receive, jittery).unwrap();
    let samples = rtts(&network, "node0", "node1", 40);
    let (min, max) = samples.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &x| (lo.min(x), hi.max(x)));
    eprintln!("measured: 60 ms +- 20 ms normal: RTT from {min:.1} to {max:.1} ms");
    assert!(max - min > 20.0, "jitter 20 ms gave a spread of {} ms", max - min);
    let mid = median(samples);
    eprintln!("measured: 60 ms +- 20 ms normal: median {mid:.1} ms");
    assert!((mid - 60.0).abs() < 20.0, "median {mid} ms");
    teardown(network);
}

#[test]
fn rate_limits_throughput_within_ten_percent() {
    let network = up(&NetworkSpec::new("t-qos-rate", 1));
    if !netem_here(&network) {
        return teardown(network);
    }
    let rate: netdriver::Rate = "8mbit".parse().unwrap();
    network.configure_qos("node0", Direction::Send, Qos { rate: Some(rate), ..Qos::default() }).unwrap();
    // The node streams zeros to the host for a while; the host counts what arrives in the
    // steady part.
    let listener = TcpListener::bind((network.host_ip(), 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!("nc {} {port} < /dev/zero", network.host_ip());
    let mut sender = network.nodes()[0].spawn(Command::new("sh").args(["-c", &script])).unwrap();
    let (mut stream, _) = listener.accept().unwrap();
    let mut buf = vec![0u8; 64 * 1024];
    let mut read = |until: Instant| {
        let mut n = 0;
        while Instant::now() < until {
            n += stream.read(&mut buf).unwrap();
        }
        n
    };
    read(Instant::now() + Duration::from_secs(1));
    let start = Instant::now();
    let bytes = read(start + Duration::from_secs(4));
    let measured = bytes as f64 * 8.0 / start.elapsed().as_secs_f64();
    let _ = sender.kill();
    let _ = sender.wait();
    let want = rate.bits_per_sec() as f64;
    eprintln!("measured: rate 8mbit: {:.3} Mbit/s", measured / 1e6);
    assert!((measured / want - 1.0).abs() < 0.10, "rate 8mbit gave {:.2} Mbit/s", measured / 1e6);
    teardown(network);
}

/// A GET of `path` on port 26657 of `node`, from the host: the body, or `None`.
fn rpc(node: &netdriver::Node, path: &str) -> Option<String> {
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect_timeout(&(node.ip(), 26657).into(), Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {}\r\n\r\n", node.ip()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_string())
}

#[test]
fn a_consensus_network_commits_through_a_slow_node() {
    // Tendermint's kvstore (static Go, from scripts/install-stack; scripts/test copies it
    // into the guest).
    let kvstore = match netdriver::profile::Kvstore::locate(None) {
        Ok(kvstore) => kvstore,
        Err(e) if std::env::var_os("NETDRIVER_GUEST").is_none() => return eprintln!("skipped here: {e}"),
        Err(e) => panic!("the guest needs tendermint: {e}"),
    };
    let cluster = netdriver::profile::Cluster::launch(std::sync::Arc::new(kvstore), "t-qos-kv", 3).unwrap();
    if !netem_here(&cluster) {
        return;
    }
    let [_, node1, node2] = cluster.nodes() else { unreachable!("three nodes") };
    cluster.configure_qos("node2", Direction::Both, delay(150)).unwrap();
    let connect = |node: &netdriver::Node| {
        let start = Instant::now();
        std::net::TcpStream::connect_timeout(&(node.ip(), 26657).into(), Duration::from_secs(5)).unwrap();
        start.elapsed()
    };
    let (slow, fast) = (connect(node2), connect(node1));
    eprintln!("TCP handshake from the host: node2 (150 ms each way) {slow:?}, node1 {fast:?}");
    assert!(slow >= Duration::from_millis(290), "a handshake with node2 took {slow:?}");
    assert!(fast < Duration::from_millis(100), "a handshake with node1 took {fast:?}");

    // A transaction sent through the slow node commits, and every node has it.
    let answer = rpc(node2, "/broadcast_tx_commit?tx=%22slow=yes%22").expect("an answer from node2");
    assert!(answer.contains("\"height\"") && !answer.contains("\"error\""), "{answer}");
    for node in cluster.nodes() {
        common::wait_until(&format!("{} has the key", node.name()), Duration::from_secs(30), || {
            rpc(node, "/abci_query?data=%22slow%22").is_some_and(|a| a.contains("\"eWVz\""))
        });
    }
    cluster.down().unwrap();
}

//! Profiles with real programs: a Tendermint kvstore network (Tendermint from
//! `scripts/install-stack`) that commits, catches a stopped node up, resets a node, and takes
//! configuration; and the errors of a profile whose programs are missing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{assert_no_leftovers, exec, wait_until};
use netdriver::profile::{self, Kvstore, Profile};
use netdriver::{ClockSkew, Error, Node};
use serde_json::json;

/// Waits this long for a value to reach a node.
const CATCH_UP: Duration = Duration::from_secs(30);

pub(crate) fn kvstore() -> Arc<dyn Profile> {
    Arc::new(Kvstore::locate(None).unwrap_or_else(|e| panic!("{e}")))
}

/// An RPC call to the node's Tendermint, from inside the node.
pub(crate) fn rpc(node: &Node, path: &str) -> Option<serde_json::Value> {
    let url = format!("{}{path}", node.url().expect("kvstore nodes have a URL"));
    let out = exec(node, &["curl", "-s", "--max-time", "10", &url]);
    serde_json::from_slice(&out.stdout).ok()
}

/// Commits `key=value` through `node`; returns the height of the block that holds it.
pub(crate) fn put(node: &Node, key: &str, value: &str) -> u64 {
    let answer = rpc(node, &format!("broadcast_tx_commit?tx=%22{key}={value}%22")).expect("an RPC answer");
    assert_eq!(answer["result"]["deliver_tx"]["code"].as_u64().unwrap_or(0), 0, "{answer}");
    let height = answer["result"]["height"].as_str().and_then(|h| h.parse().ok()).unwrap_or(0);
    assert!(height > 0, "not committed: {answer}");
    height
}

/// The value of `key` on `node` (the kvstore answers in base64).
pub(crate) fn get(node: &Node, key: &str) -> Option<String> {
    let answer = rpc(node, &format!("abci_query?data=%22{key}%22"))?;
    answer["result"]["response"]["value"].as_str().map(str::to_string)
}

#[test]
fn a_kvstore_network_commits_and_catches_up() {
    let network = kvstore().launch("t-kvstore", 4).unwrap_or_else(|e| panic!("{e}"));
    let id = network.id().to_string();
    let nodes = network.nodes();
    put(&nodes[0], "a", "1");
    for node in nodes {
        wait_until(&format!("{} has a", node.name()), CATCH_UP, || get(node, "a").as_deref() == Some("MQ=="));
    }

    // Three of four validators keep committing; the fourth catches up when it is back.
    nodes[0].stop().unwrap();
    put(&nodes[1], "b", "2");
    // Convergence: not while a node is down (it names the one behind), at once when it is back.
    let err = kvstore().wait_converged(&network, Duration::from_secs(2)).unwrap_err().to_string();
    assert!(err.contains("did not converge within 2s") && err.contains("node0 at no answer"), "{err}");
    nodes[0].start().unwrap();
    let converged = kvstore().wait_converged(&network, CATCH_UP).unwrap();
    let block = |node: &Node| rpc(node, &format!("block?height={}", converged.height)).expect("a block");
    for node in nodes {
        let result = &block(node)["result"];
        assert_eq!(result["block_meta"]["block_id"]["hash"], converged.block_hash.as_str(), "{}", node.name());
        assert_eq!(result["block"]["header"]["app_hash"], converged.app_hash.as_str());
    }
    assert_eq!(get(&nodes[0], "b").as_deref(), Some("Mg=="), "node0 converged without the key");

    // A reset keeps keys and configuration: the node replays the chain from its peers.
    let tendermint = nodes[3].service("tendermint").unwrap();
    tendermint.reset().unwrap();
    assert!(tendermint.data_dir().join("config/priv_validator_key.json").is_file(), "reset removed the keys");
    wait_until("node3 replays the chain", CATCH_UP, || get(&nodes[3], "b").as_deref() == Some("Mg=="));

    // Configuration merges into config.toml and applies at the next start.
    let node2 = network.node("node2").unwrap().service("tendermint").unwrap();
    node2.configure(&json!({"moniker": "renamed", "consensus.timeout_commit": "500ms"})).unwrap();
    nodes[2].restart_service("tendermint").unwrap();
    let status = rpc(&nodes[2], "status").expect("status");
    assert_eq!(status["result"]["node_info"]["moniker"], "renamed");
    let config =
        std::fs::read_to_string(nodes[2].service("tendermint").unwrap().data_dir().join("config/config.toml")).unwrap();
    assert!(config.contains("timeout_commit = \"500ms\""), "{config}");
    let err = node2.configure(&json!({"moniker.x": 1})).unwrap_err().to_string();
    assert!(err.contains("not a table"), "{err}");

    network.down().unwrap();
    assert_no_leftovers(&id);
}

/// Seconds since the epoch of an RFC 3339 time in UTC, as Tendermint writes them
/// (`2026-12-01T12:00:00.123456789Z`).
fn utc_secs(text: &str) -> f64 {
    let bad = format!("not an RFC 3339 UTC time: {text}");
    let (date, time) = text.strip_suffix('Z').and_then(|t| t.split_once('T')).expect(&bad);
    let d: Vec<i64> = date.split('-').map(|v| v.parse().expect(&bad)).collect();
    let t: Vec<f64> = time.split(':').map(|v| v.parse().expect(&bad)).collect();
    // Days from 1970-01-01 to the date (the civil-from-days inverse, proleptic Gregorian).
    let (y, m) = if d[1] <= 2 { (d[0] - 1, d[1] + 9) } else { (d[0], d[1] - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + (153 * m + 2) / 5 + d[2] - 1;
    let days = era * 146_097 + doe - 719_468;
    days as f64 * 86400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

/// How far ahead of the host's clock block `height` (just committed) is stamped, read on `node`.
fn block_ahead(node: &Node, height: u64) -> Option<f64> {
    let block = rpc(node, &format!("block?height={height}"))?;
    let time = utc_secs(block["result"]["block"]["header"]["time"].as_str()?);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    Some(time - now)
}

/// How far ahead of the host's clock `node`'s latest block is stamped, and its height.
fn latest_block(node: &Node) -> Option<(f64, u64)> {
    let status = rpc(node, "status")?;
    let info = &status["result"]["sync_info"];
    let time = utc_secs(info["latest_block_time"].as_str()?);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    Some((time - now, info["latest_block_height"].as_str()?.parse().ok()?))
}

#[test]
fn block_times_follow_the_validators_clocks() {
    assert_eq!(utc_secs("1970-01-02T00:00:01.5Z"), 86401.5);
    assert_eq!(utc_secs("2026-12-01T00:00:00Z"), 1_796_083_200.0);
    let day = ClockSkew { realtime: "+1d".parse().unwrap(), ..ClockSkew::default() };
    let ten_minutes = ClockSkew { realtime: "+10m".parse().unwrap(), ..ClockSkew::default() };

    // All four validators a day ahead, while they run: the next blocks are a day ahead.
    let network = kvstore().launch("t-kvclock", 4).unwrap_or_else(|e| panic!("{e}"));
    let nodes = network.nodes();
    put(&nodes[0], "before", "1");
    let (ahead, _) = latest_block(&nodes[0]).expect("a status");
    assert!(ahead.abs() < 30.0, "blocks {ahead:.0} s off the host's clock before any change");
    for node in nodes {
        let report = node.configure_clock(day.clone(), false).unwrap();
        assert_eq!(report, netdriver::ClockReport::default(), "{}: {report:?}", node.name());
    }
    // A block's time is the median of the votes for the block before it: the block of the
    // second transaction after the change is the first whose votes were all cast a day ahead.
    // Each block is read by its height on the node that committed it.
    let mut after = Vec::new();
    for i in 0..3 {
        let height = put(&nodes[i % 4], &format!("after{i}"), "1");
        after.push(block_ahead(&nodes[i % 4], height).expect("the block"));
    }
    eprintln!("kvstore: blocks after all four went +1d are stamped {after:.1?} s ahead");
    assert!(after[1..].iter().all(|a| (a - 86400.0).abs() < 30.0), "blocks after the change: {after:?} s ahead");
    network.down().unwrap();

    // One validator of four ten minutes ahead: BFT time is a median, so the chain goes on
    // near the host's clock.
    let network = kvstore().launch("t-kvclock1", 4).unwrap_or_else(|e| panic!("{e}"));
    let nodes = network.nodes();
    nodes[0].configure_clock(ten_minutes, false).unwrap();
    let (_, height) = latest_block(&nodes[1]).expect("a status");
    for i in 0..5 {
        put(&nodes[i % 4], &format!("skewed{i}"), "1");
    }
    wait_until("five more blocks everywhere", CATCH_UP, || {
        nodes.iter().all(|n| latest_block(n).is_some_and(|(_, h)| h >= height + 5))
    });
    for node in nodes {
        let (ahead, _) = latest_block(node).expect("a status");
        eprintln!("kvstore: with node0 +10min, {}'s latest block is {ahead:.1} s off", node.name());
        assert!(ahead.abs() < 30.0, "{}: the latest block is {ahead:.0} s off the host's clock", node.name());
    }
    network.down().unwrap();
}

#[test]
fn the_genesis_lists_every_validator() {
    let profile = kvstore();
    let spec = profile.spec("t-kvgenesis", 3).unwrap();
    let network = profile.up(&spec).unwrap();
    let read = |node: &Node, file: &str| {
        let path = node.service("tendermint").unwrap().data_dir().join("config").join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    let genesis = read(&network.nodes()[0], "genesis.json");
    let parsed: serde_json::Value = serde_json::from_str(&genesis).unwrap();
    let names: Vec<&str> =
        parsed["validators"].as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["node0", "node1", "node2"]);
    for node in network.nodes() {
        assert_eq!(read(node, "genesis.json"), genesis, "{} has another genesis", node.name());
        let config = read(node, "config.toml");
        let peers = config.lines().find(|l| l.starts_with("persistent_peers")).expect("persistent_peers");
        assert_eq!(peers.matches('@').count(), 2, "{peers}");
        assert!(!peers.contains(&node.ip().to_string()), "{} lists itself: {peers}", node.name());
        assert!(config.contains("addr_book_strict = false"), "{config}");
    }
    network.down().unwrap();
}

#[test]
fn missing_programs_and_unknown_profiles_are_named() {
    let err = Kvstore::locate(Some(Path::new("/nonexistent/tendermint"))).unwrap_err();
    assert!(matches!(err, Error::MissingBinary { .. }), "{err}");
    assert!(err.to_string().contains("/nonexistent/tendermint"), "{err}");

    let err = profile::by_name("cassandra", &[]).unwrap_err().to_string();
    assert!(err.contains("unknown profile 'cassandra'") && err.contains("bigchaindb, kvstore"), "{err}");
    let err = profile::by_name("kvstore", &[("tendermnt".into(), "/x".into())]).unwrap_err().to_string();
    assert!(err.contains("unknown program 'tendermnt'"), "{err}");

    // A path given for one program is used as given: it names the missing one.
    let binaries = [("ferretdb".into(), "/bin/true".into()), ("bigchaindb".into(), "/nonexistent/bigchaindb".into())];
    let err = profile::by_name("bigchaindb", &binaries).unwrap_err();
    assert!(matches!(err, Error::MissingBinary { .. }), "{err}");
    assert!(err.to_string().contains("'/nonexistent/bigchaindb' not found"), "{err}");
}

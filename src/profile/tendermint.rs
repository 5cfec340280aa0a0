//! Tendermint and CometBFT networks: the node service, and a testnet made of one genesis that
//! lists every node as a validator, with every other node as a persistent peer.
//!
//! Works with any Tendermint-style binary that has `init`, `show_node_id` (or
//! `show-node-id`), `unsafe_reset_all` (or `unsafe-reset-all`) and `node`: Tendermint 0.31 to
//! 0.34 and CometBFT. The application is an ABCI server (`tcp://127.0.0.1:26658`) or a
//! built-in one like `kvstore`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::config::{merge, write_file, Format};
use crate::error::{Context, Error, Result};
use crate::network::Network;
use crate::spec::{Probe, ServiceSpec};

/// Peer-to-peer port.
pub const P2P_PORT: u16 = 26656;
/// RPC port; `GET /status` tells readiness.
pub const RPC_PORT: u16 = 26657;

/// A Tendermint-style binary.
#[derive(Debug, Clone)]
pub struct Tendermint {
    binary: PathBuf,
    /// Whether subcommands are spelled with `_` (before Tendermint 0.35) or `-`.
    underscores: bool,
}

impl Tendermint {
    /// The binary at `binary`, asking it for its version to learn its command spelling.
    pub fn new(binary: PathBuf) -> Result<Tendermint> {
        let out = Command::new(&binary)
            .arg("version")
            .output()
            .context(|| format!("running {} version", binary.display()))?;
        let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || version.is_empty() {
            return Err(Error::invalid(
                binary.display().to_string(),
                "`version` printed nothing: not a Tendermint binary",
            ));
        }
        Ok(Tendermint { underscores: spelled_with_underscores(&version), binary })
    }

    /// The binary's path.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    fn subcommand(&self, name: &str) -> String {
        if self.underscores {
            name.replace('-', "_")
        } else {
            name.to_string()
        }
    }

    /// The node service `name`: home in its data directory, ready when `/status` answers,
    /// reset with `unsafe-reset-all` (which keeps keys and configuration), configured in
    /// `config/config.toml`.
    pub fn service(&self, name: &str) -> Result<ServiceSpec> {
        let binary = self.binary.to_string_lossy();
        Ok(ServiceSpec::new(name, &binary)?
            .args(["node", "--home", "{data}"])?
            .reset_with([&*binary, &self.subcommand("unsafe-reset-all"), "--home", "{data}"])?
            .config("{data}/config/config.toml", Format::Toml)?
            .ready(
                Probe::Http(crate::template::Template::parse(&format!("http://{{ip}}:{RPC_PORT}/status"))?),
                Duration::from_secs(60),
            ))
    }

    /// Writes a testnet into the data directories of `service` on every node of `network`:
    /// keys, one genesis listing every node as a validator of power 10, and a configuration
    /// with its persistent peers ([`peers_of`]), `settings` merged last.
    pub fn prepare_testnet(&self, network: &Network, service: &str, settings: &Value) -> Result<()> {
        let homes: Vec<PathBuf> = network
            .nodes()
            .iter()
            .map(|n| n.service(service).map(|s| s.data_dir().to_path_buf()))
            .collect::<Result<_>>()?;
        // `init` and `show-node-id` start a Go runtime each: run them a few nodes at a time.
        let ids: Vec<String> = std::thread::scope(|scope| {
            let workers: Vec<_> = homes
                .chunks(homes.len().div_ceil(8))
                .map(|chunk| scope.spawn(move || chunk.iter().map(|home| self.init(home)).collect::<Result<Vec<_>>>()))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or_else(|_| Err(Error::State("tendermint init panicked".into()))))
                .collect::<Result<Vec<_>>>()
        })?
        .into_iter()
        .flatten()
        .collect();

        let mut genesis = read_json(&homes[0].join("config/genesis.json"))?;
        let mut validators = Vec::new();
        for (node, home) in network.nodes().iter().zip(&homes) {
            let key = read_json(&home.join("config/priv_validator_key.json"))?;
            validators.push(
                json!({"address": key["address"], "pub_key": key["pub_key"], "power": "10", "name": node.name()}),
            );
        }
        genesis["validators"] = Value::Array(validators);
        let genesis = serde_json::to_string_pretty(&genesis).map_err(|e| Error::invalid("genesis", e.to_string()))?;

        for (i, (node, home)) in network.nodes().iter().zip(&homes).enumerate() {
            write_file(&home.join("config/genesis.json"), &genesis)?;
            let nodes = network.nodes();
            let peers: Vec<String> = peers_of(i, nodes.len())
                .into_iter()
                .map(|j| format!("{}@{}:{P2P_PORT}", ids[j], nodes[j].ip()))
                .collect();
            // One read and one write per node: the testnet's settings, then the caller's.
            let config = node.service(service)?.config_file()?;
            let mut doc = config.read()?;
            merge(
                &mut doc,
                &json!({
                    "moniker": node.name(),
                    "rpc": {"laddr": format!("tcp://0.0.0.0:{RPC_PORT}")},
                    "p2p": {
                        "laddr": format!("tcp://0.0.0.0:{P2P_PORT}"),
                        // Room for every peer that dials in, and every one dialled.
                        "max_num_inbound_peers": peers.len().max(40),
                        "max_num_outbound_peers": peers.len().max(10),
                        "persistent_peers": peers.join(","),
                        "addr_book_strict": false,
                        "pex": false,
                        "allow_duplicate_ip": true,
                    },
                }),
            )?;
            merge(&mut doc, settings)?;
            config.write(&doc)?;
        }
        Ok(())
    }

    /// Waits until every node has committed the first block: a chain stopped before it cannot
    /// always start again (BigchainDB, for one, refuses a second InitChain). The wait grows
    /// with the network: 60 s and 2 s a node (64 validators on 2 cores took 90-116 s).
    pub fn wait_for_first_block(&self, network: &Network) -> Result<()> {
        let timeout = Duration::from_secs(60 + 2 * network.nodes().len() as u64);
        let deadline = std::time::Instant::now() + timeout;
        for node in network.nodes() {
            let url = rpc_url(node, "status");
            loop {
                network.cancel().check(|| format!("waiting for {}'s first block", node.name()))?;
                let height = node.http_text(&url).and_then(|text| {
                    let status: Value = serde_json::from_str(&text).ok()?;
                    status["result"]["sync_info"]["latest_block_height"].as_str()?.parse::<u64>().ok()
                });
                if height.is_some_and(|h| h >= 1) {
                    break;
                }
                if std::time::Instant::now() >= deadline {
                    return Err(Error::State(format!(
                        "{} committed no block within {timeout:?} (latest height {height:?}); see its tendermint logs in {}",
                        node.name(),
                        node.dir().display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// Waits until the nodes agree: every node has the block at the height the most advanced
    /// one had when the wait began, and the same one (its hash, and the app hash in its
    /// header), so a node that lagged or was cut off has caught up. A live chain goes on
    /// making blocks meanwhile; that does not keep it from converging.
    pub fn wait_converged(&self, network: &Network, timeout: Duration) -> Result<Converged> {
        let deadline = std::time::Instant::now() + timeout;
        let height_of = |node: &crate::node::Node| -> Option<u64> {
            let status: Value = serde_json::from_str(&node.http_text(&rpc_url(node, "status"))?).ok()?;
            status["result"]["sync_info"]["latest_block_height"].as_str()?.parse().ok()
        };
        let block_of = |node: &crate::node::Node, height: u64| -> Option<(String, String)> {
            let block: Value =
                serde_json::from_str(&node.http_text(&rpc_url(node, &format!("block?height={height}")))?).ok()?;
            let result = &block["result"];
            // Tendermint 0.31 puts the block's id under `block_meta`, later ones at the top.
            let id =
                if result["block_id"].is_object() { &result["block_id"] } else { &result["block_meta"]["block_id"] };
            Some((id["hash"].as_str()?.to_string(), result["block"]["header"]["app_hash"].as_str()?.to_string()))
        };
        let mut target = None;
        loop {
            network.cancel().check(|| "waiting for the nodes to converge".into())?;
            let heights: Vec<Option<u64>> = network.nodes().iter().map(height_of).collect();
            let target = *target.get_or_insert_with(|| heights.iter().flatten().max().copied().unwrap_or(1));
            let behind: Vec<String> = network
                .nodes()
                .iter()
                .zip(&heights)
                .filter(|(_, h)| h.is_none_or(|h| h < target))
                .map(|(n, h)| format!("{} at {}", n.name(), h.map_or("no answer".into(), |h| h.to_string())))
                .collect();
            let last = if behind.is_empty() {
                let blocks: Vec<Option<(String, String)>> =
                    network.nodes().iter().map(|n| block_of(n, target)).collect();
                match blocks.first() {
                    Some(Some((hash, app_hash))) if blocks.iter().all(|b| b.as_ref() == blocks[0].as_ref()) => {
                        return Ok(Converged { height: target, block_hash: hash.clone(), app_hash: app_hash.clone() });
                    }
                    _ => format!("the nodes' blocks at height {target} differ or did not answer: {blocks:?}"),
                }
            } else {
                format!("behind height {target}: {}", behind.join(", "))
            };
            if std::time::Instant::now() >= deadline {
                return Err(Error::State(format!(
                    "the nodes did not converge within {timeout:?}: {last}; see their tendermint logs in {}",
                    network.run_dir().display()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `init` in `home` and returns the node's id.
    fn init(&self, home: &Path) -> Result<String> {
        let home_arg = home.as_os_str();
        run(Command::new(&self.binary).arg("init").arg("--home").arg(home_arg))?;
        let id = run(Command::new(&self.binary).arg(self.subcommand("show-node-id")).arg("--home").arg(home_arg))?;
        Ok(id.trim().to_string())
    }
}

/// Where the nodes agreed ([`Tendermint::wait_converged`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Converged {
    /// The height every node has.
    pub height: u64,
    /// The hash of the block at that height, the same on every node.
    pub block_hash: String,
    /// The application's state hash in that block's header.
    pub app_hash: String,
}

/// The URL of `path` on the node's Tendermint RPC.
fn rpc_url(node: &crate::node::Node, path: &str) -> String {
    format!("http://{}:{RPC_PORT}/{path}", node.ip())
}

/// Runs `cmd` to completion and returns its standard output; a failure names the command and its
/// standard error.
fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        return Err(Error::State(format!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Tendermint before 0.35 spells subcommands with `_`; later ones and CometBFT with `-`.
fn spelled_with_underscores(version: &str) -> bool {
    let digits = version.trim_start_matches('v');
    let mut parts = digits.split(['.', '-', '+']).map(|p| p.parse::<u32>().ok());
    matches!((parts.next().flatten(), parts.next().flatten()), (Some(0), Some(minor)) if minor < 35)
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| Error::invalid(path.display().to_string(), e.to_string()))
}

/// The persistent peers of node `i` of `n`: every other node up to 16 nodes; past that, the
/// nodes 1, 2, 4, 8, ... places ahead and behind on a ring, so each node has about 2·log2(n)
/// peers and every vote reaches every node within log2(n) hops (a full mesh of 64 Tendermint
/// nodes is 4032 connections, more than its default peer limits take).
pub fn peers_of(i: usize, n: usize) -> Vec<usize> {
    if n <= 16 {
        return (0..n).filter(|&j| j != i).collect();
    }
    let mut peers: Vec<usize> = std::iter::successors(Some(1usize), |d| Some(d * 2))
        .take_while(|&d| d < n)
        .flat_map(|d| [(i + d) % n, (i + n - d) % n])
        .filter(|&j| j != i)
        .collect();
    peers.sort_unstable();
    peers.dedup();
    peers
}

#[cfg(test)]
mod tests {
    use super::{peers_of, spelled_with_underscores};

    #[test]
    fn command_spelling_by_version() {
        assert!(spelled_with_underscores("0.31.5"));
        assert!(spelled_with_underscores("0.34.24"));
        assert!(!spelled_with_underscores("0.37.4"));
        assert!(!spelled_with_underscores("v0.38.12"));
        assert!(!spelled_with_underscores("1.0.0"));
    }

    #[test]
    fn small_networks_are_full_meshes_and_large_ones_rings_with_chords() {
        assert_eq!(peers_of(0, 4), vec![1, 2, 3]);
        assert_eq!(peers_of(5, 16).len(), 15);
        let peers = peers_of(0, 64);
        assert_eq!(peers, vec![1, 2, 4, 8, 16, 32, 48, 56, 60, 62, 63]);
        // Every node is reached from node 0 within log2(64) = 6 hops.
        let mut reached = [false; 64];
        let mut frontier = vec![0];
        reached[0] = true;
        for _ in 0..6 {
            frontier = frontier
                .iter()
                .flat_map(|&a| peers_of(a, 64))
                .filter(|&b| !std::mem::replace(&mut reached[b], true))
                .collect();
        }
        assert!(reached.iter().all(|&r| r));
    }
}

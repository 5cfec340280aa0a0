//! The `kvstore` profile: a Tendermint (or CometBFT) network running its built-in key-value
//! application, the lightest real consensus network there is.

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::tendermint::{Converged, Tendermint};
use super::Profile;
use crate::error::Result;
use crate::network::Network;
use crate::spec::NetworkSpec;
use crate::template::Template;

/// Tendermint nodes with the built-in `kvstore` application; the node URL is the RPC root
/// (`broadcast_tx_commit?tx="k=v"`, `abci_query?data="k"`).
#[derive(Debug, Clone)]
pub struct Kvstore {
    tendermint: Tendermint,
}

impl Kvstore {
    /// Finds Tendermint at `given`, else `tendermint` (or `cometbft`) on PATH or in the stack
    /// directory.
    pub fn locate(given: Option<&Path>) -> Result<Kvstore> {
        let binary = match given {
            Some(path) => super::locate("tendermint", "tendermint", Some(path))?,
            None => super::locate("tendermint", "tendermint", None)
                .or_else(|e| super::locate("tendermint", "cometbft", None).map_err(|_| e))?,
        };
        Ok(Kvstore { tendermint: Tendermint::new(binary)? })
    }
}

impl Profile for Kvstore {
    fn name(&self) -> &'static str {
        "kvstore"
    }

    fn spec(&self, name: &str, nodes: usize) -> Result<NetworkSpec> {
        let mut spec = NetworkSpec::new(name, nodes).service(self.tendermint.service("tendermint")?);
        spec.url = Some(Template::parse("http://{ip}:26657/")?);
        spec.fault_services.services = Some(vec!["tendermint".into()]);
        Ok(spec)
    }

    fn prepare(&self, network: &Network) -> Result<()> {
        self.tendermint.prepare_testnet(
            network,
            "tendermint",
            &json!({"proxy_app": "kvstore", "consensus": {"create_empty_blocks": false}}),
        )
    }

    fn settle(&self, network: &Network) -> Result<()> {
        self.tendermint.wait_for_first_block(network)
    }

    fn wait_converged(&self, network: &Network, timeout: Duration) -> Result<Converged> {
        self.tendermint.wait_converged(network, timeout)
    }
}

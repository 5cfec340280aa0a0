//! The `bigchaindb` profile: every node runs a MongoDB-compatible database, BigchainDB 2.2.2
//! server and Tendermint 0.31.5, started in that order, as one network.
//!
//! Ports inside each node: 9984 (HTTP API, [`Node::url`]), 9985 (websocket), 26656/26657
//! (Tendermint p2p/RPC), 26658 (ABCI, BigchainDB), 27017 (database). Tendermint restarts
//! whenever BigchainDB starts again: it does not reconnect to a restarted application.
//!
//! BigchainDB runs through a small launcher (`bigchaindb_launcher.py`): `bigchaindb start`,
//! whose schema setup skips the two text indexes where the database refuses them (FerretDB
//! has none), and which, on FerretDB, runs the two queries that use `$elemMatch` with `$and`
//! (what spends an output, needed by TRANSFER) in a form FerretDB implements. With FerretDB,
//! text search (`GET /api/v1/assets?search=`, `/metadata?search=`) fails; everything else
//! works.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::database::Database;
use super::tendermint::{Converged, Tendermint};
use super::Profile;
use crate::config::{write_file, Format};
use crate::error::{Context, Error, Result};
use crate::network::Network;
use crate::node::Node;
use crate::spec::{NetworkSpec, Probe, ServiceSpec};
use crate::template::Template;

/// The database service.
pub const DB: &str = "db";
/// The BigchainDB server.
pub const BIGCHAINDB: &str = "bigchaindb";
/// The Tendermint node.
pub const TENDERMINT: &str = "tendermint";
/// BigchainDB's HTTP API port.
pub const API_PORT: u16 = 9984;

/// BigchainDB's configuration file on each node.
const CONFIG: &str = "{dir}/bigchaindb/config.json";

/// The launcher: `bigchaindb start`, tolerating a database without text indexes.
const LAUNCHER: &str = include_str!("bigchaindb_launcher.py");

/// Where the BigchainDB stack's programs are.
#[derive(Debug, Clone)]
pub struct BigchainDb {
    database: Database,
    bigchaindb: PathBuf,
    python: PathBuf,
    tendermint: Tendermint,
}

impl BigchainDb {
    /// Finds the programs: `given(program)` if it names a path, else on PATH, else in the
    /// stack directory (see [`super::stack_dir`]). Programs: `mongod` or `ferretdb`,
    /// `bigchaindb`, `tendermint`.
    pub fn locate<'a>(given: impl Fn(&str) -> Option<&'a Path>) -> Result<BigchainDb> {
        let database = Database::locate(given("mongod"), given("ferretdb"))?;
        let bigchaindb = super::locate(BIGCHAINDB, "bigchaindb", given("bigchaindb"))?;
        let python = interpreter(&bigchaindb)?;
        let tendermint = Tendermint::new(super::locate(TENDERMINT, "tendermint", given("tendermint"))?)?;
        Ok(BigchainDb { database, bigchaindb, python, tendermint })
    }

    /// The database this profile runs.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// The `bigchaindb` program.
    pub fn bigchaindb(&self) -> &Path {
        &self.bigchaindb
    }
}

impl Profile for BigchainDb {
    fn name(&self) -> &'static str {
        "bigchaindb"
    }

    fn spec(&self, name: &str, nodes: usize) -> Result<NetworkSpec> {
        let server = ServiceSpec::new(BIGCHAINDB, &self.python.to_string_lossy())?
            .args(["{dir}/bigchaindb/launcher.py"])?
            .env("BIGCHAINDB_CONFIG_PATH", CONFIG)?
            .config(CONFIG, Format::Json)?
            .env("HOME", "{data}")?
            .env("NETDRIVER_DATABASE", self.database.kind())?
            .ready(Probe::Http(Template::parse(&format!("http://{{ip}}:{API_PORT}/"))?), Duration::from_secs(90))
            .after(DB);
        let tendermint = self.tendermint.service(TENDERMINT)?.after(BIGCHAINDB).restart_with(BIGCHAINDB);
        let mut spec =
            NetworkSpec::new(name, nodes).service(self.database.service(DB)?).service(server).service(tendermint);
        spec.url = Some(Template::parse(&format!("http://{{ip}}:{API_PORT}/api/v1/"))?);
        // Every service may be paused, only the database killed or stopped. Tendermint 0.31.5
        // cannot restart once a block's ABCI responses were saved and its state was not: its
        // replay reads BigchainDB's empty DeliverTx answers back as nil and panics, every time
        // (tendermint/tendermint#3236). Killing Tendermint there gets it, and so does killing
        // BigchainDB after it committed a block but before it answered (Tendermint then stops
        // itself, a clean-clone CI run hit both). A schedule may still name them (`services`,
        // `kill_services`).
        spec.fault_services.kill_services = Some(vec![DB.to_string()]);
        Ok(spec)
    }

    fn prepare(&self, network: &Network) -> Result<()> {
        let settings = json!({"proxy_app": "tcp://127.0.0.1:26658", "consensus": {"create_empty_blocks": false}});
        self.tendermint.prepare_testnet(network, TENDERMINT, &settings)?;
        for node in network.nodes() {
            let dir = service_dir(node);
            write_file(&dir.join("launcher.py"), LAUNCHER)?;
            let logs = dir.to_string_lossy();
            let config = node.service(BIGCHAINDB)?.config_file()?;
            config.write(&json!({
                "server": {"bind": format!("0.0.0.0:{API_PORT}"), "workers": 2},
                "wsserver": {"host": "0.0.0.0", "advertised_host": node.ip().to_string()},
                "database": {"backend": "localmongodb", "host": "localhost", "port": super::database::PORT, "name": "bigchain"},
                "tendermint": {"host": "localhost", "port": super::tendermint::RPC_PORT},
                "log": {"file": format!("{logs}/bigchaindb.log"), "error_file": format!("{logs}/bigchaindb-errors.log")},
            }))?;
        }
        Ok(())
    }

    fn settle(&self, network: &Network) -> Result<()> {
        self.tendermint.wait_for_first_block(network)
    }

    fn wait_converged(&self, network: &Network, timeout: Duration) -> Result<Converged> {
        self.tendermint.wait_converged(network, timeout)
    }
}

/// The original Node API of BigchainDB's integration tests, on a node of this profile.
///
/// Each call waits for readiness where it starts something. Starting a running service or
/// stopping a stopped one does nothing. Configuration takes effect at the service's next start.
pub trait BigchainDbNode {
    /// Starts the database.
    fn start_db(&self) -> Result<()>;
    /// Stops the database.
    fn stop_db(&self) -> Result<()>;
    /// Wipes the database (stopping and restarting it if it runs).
    fn reset_db(&self) -> Result<()>;
    /// Starts BigchainDB (and restarts Tendermint if it runs).
    fn start_bigchaindb(&self) -> Result<()>;
    /// Stops BigchainDB.
    fn stop_bigchaindb(&self) -> Result<()>;
    /// Merges settings into BigchainDB's configuration (`{"server": {"workers": 4}}`).
    fn configure_bigchaindb(&self, settings: &Value) -> Result<()>;
    /// Starts Tendermint.
    fn start_tendermint(&self) -> Result<()>;
    /// Stops Tendermint.
    fn stop_tendermint(&self) -> Result<()>;
    /// Resets Tendermint's chain state, keeping keys and configuration (`unsafe_reset_all`).
    /// Reset the database with it: BigchainDB refuses a chain that starts over on old data.
    fn reset_tendermint(&self) -> Result<()>;
    /// Merges settings into Tendermint's `config.toml` (`{"consensus.timeout_commit": "500ms"}`).
    fn configure_tendermint(&self, settings: &Value) -> Result<()>;
}

impl BigchainDbNode for Node {
    fn start_db(&self) -> Result<()> {
        self.start_service(DB)
    }
    fn stop_db(&self) -> Result<()> {
        self.service(DB)?.stop()
    }
    fn reset_db(&self) -> Result<()> {
        self.service(DB)?.reset()
    }
    fn start_bigchaindb(&self) -> Result<()> {
        self.start_service(BIGCHAINDB)
    }
    fn stop_bigchaindb(&self) -> Result<()> {
        self.service(BIGCHAINDB)?.stop()
    }
    fn configure_bigchaindb(&self, settings: &Value) -> Result<()> {
        self.service(BIGCHAINDB)?.configure(settings)
    }
    fn start_tendermint(&self) -> Result<()> {
        self.start_service(TENDERMINT)
    }
    fn stop_tendermint(&self) -> Result<()> {
        self.service(TENDERMINT)?.stop()
    }
    fn reset_tendermint(&self) -> Result<()> {
        self.service(TENDERMINT)?.reset()
    }
    fn configure_tendermint(&self, settings: &Value) -> Result<()> {
        self.service(TENDERMINT)?.configure(settings)
    }
}

fn service_dir(node: &Node) -> PathBuf {
    node.dir().join(BIGCHAINDB)
}

/// The Python that runs the `bigchaindb` script: the one its `#!` line names.
fn interpreter(script: &Path) -> Result<PathBuf> {
    let text = std::fs::read(script).context(|| format!("reading {}", script.display()))?;
    let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(first);
    line.strip_prefix("#!")
        .and_then(|l| l.split_whitespace().next())
        .map(PathBuf::from)
        .filter(|p| p.is_file())
        .ok_or_else(|| {
            Error::invalid(script.display().to_string(), "not a Python script with a #! line naming its interpreter")
        })
}

//! A MongoDB-compatible database per node: a real `mongod`, or FerretDB (the MongoDB wire
//! protocol over SQLite) where no `mongod` is installed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::spec::{Probe, ServiceSpec};

/// The MongoDB port, on every address of the node.
pub const PORT: u16 = 27017;

/// Which server speaks MongoDB's protocol on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// MongoDB's own server.
    Mongod(PathBuf),
    /// FerretDB with its SQLite backend. It has no text indexes: what needs them (text search)
    /// fails, the rest works.
    FerretDb(PathBuf),
}

impl Database {
    /// `mongod` if given or on PATH, else `ferretdb` if given, on PATH or in the stack
    /// directory.
    pub fn locate(mongod: Option<&Path>, ferretdb: Option<&Path>) -> Result<Database> {
        if let Some(path) = mongod {
            return super::locate("db", "mongod", Some(path)).map(Database::Mongod);
        }
        if ferretdb.is_none() {
            if let Some(path) = crate::files::find_program("mongod") {
                return Ok(Database::Mongod(path));
            }
        }
        super::locate("db", "ferretdb", ferretdb).map(Database::FerretDb).map_err(|e| match e {
            Error::MissingBinary { service, fix, .. } => {
                Error::MissingBinary { service, program: "mongod or ferretdb".into(), fix }
            }
            other => other,
        })
    }

    /// `mongod` or `ferretdb`.
    pub fn kind(&self) -> &'static str {
        match self {
            Database::Mongod(_) => "mongod",
            Database::FerretDb(_) => "ferretdb",
        }
    }

    /// The service `name`: data in its data directory, listening on [`PORT`], ready when the
    /// port accepts connections.
    pub fn service(&self, name: &str) -> Result<ServiceSpec> {
        let spec = match self {
            Database::Mongod(bin) => ServiceSpec::new(name, &bin.to_string_lossy())?.args([
                "--dbpath",
                "{data}",
                "--bind_ip_all",
                "--port",
                &PORT.to_string(),
                "--quiet",
            ])?,
            Database::FerretDb(bin) => ServiceSpec::new(name, &bin.to_string_lossy())?.args([
                "--handler=sqlite",
                "--sqlite-url=file:{data}/",
                "--state-dir={data}",
                &format!("--listen-addr=0.0.0.0:{PORT}"),
                "--telemetry=disable",
                "--debug-addr=-",
                "--log-level=warn",
            ])?,
        };
        Ok(spec.ready(Probe::Tcp(PORT), Duration::from_secs(30)))
    }
}

//! The control protocol: what a client asks a controller and what it answers, as JSON.
//!
//! A connection carries one request, a JSON line, and one answer, a JSON document, after
//! which the server closes it. An `enter` answer comes with the node's namespace descriptors
//! (SCM_RIGHTS) in the same message.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::clock::{ClockReport, ClockSkew};
use crate::nemesis::History;
use crate::network::Network;
use crate::service::Op;
use crate::shaping::Qos;
use crate::spec::{Cut, NemesisSpec, QosTarget};

/// A snapshot of a network for `status`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Status {
    /// Run id.
    pub id: String,
    /// Network name.
    pub name: String,
    /// Subnet in CIDR form.
    pub subnet: String,
    /// IPv6 prefix in CIDR form, in a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet6: Option<String>,
    /// Run directory (logs).
    pub run_dir: PathBuf,
    /// One entry per node.
    pub nodes: Vec<NodeStatus>,
    /// What partitions and blocks cut: traffic from the `from` nodes to the `to` nodes is dropped.
    pub cuts: Vec<Cut>,
}

/// One node in a [`Status`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeStatus {
    /// Node name.
    pub name: String,
    /// Node address.
    pub ip: String,
    /// Node IPv6 address, in a dual-stack network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip6: Option<String>,
    /// Its services.
    pub services: Vec<ServiceStatus>,
}

/// One service in a [`Status`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Service name.
    pub name: String,
    /// State as text: running, stopped, paused, exited(N), killed(SIG).
    pub state: String,
    /// Main pid while it runs.
    pub pid: Option<u32>,
}

impl Status {
    /// The status of `network` now.
    pub fn of(network: &Network) -> Status {
        Status {
            id: network.id().to_string(),
            name: network.name().to_string(),
            subnet: network.subnet().to_string(),
            subnet6: network.subnet6().map(|s| s.to_string()),
            run_dir: network.run_dir().to_path_buf(),
            nodes: network
                .nodes()
                .iter()
                .map(|n| NodeStatus {
                    name: n.name().to_string(),
                    ip: n.ip().to_string(),
                    ip6: n.ip6().map(|ip| ip.to_string()),
                    services: n
                        .services()
                        .iter()
                        .map(|s| ServiceStatus {
                            name: s.name().to_string(),
                            state: s.state().to_string(),
                            pid: s.pid(),
                        })
                        .collect(),
                })
                .collect(),
            cuts: network.cuts(),
        }
    }
}

/// A service's log files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Logs {
    /// `node/service`.
    pub service: String,
    /// Its standard output.
    pub stdout: PathBuf,
    /// Its standard error.
    pub stderr: PathBuf,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "lowercase")]
pub(super) enum Request {
    Status,
    Op {
        op: Op,
        target: String,
    },
    Logs {
        target: String,
    },
    Enter {
        node: String,
    },
    Partition {
        groups: Vec<Vec<String>>,
    },
    Clock {
        node: String,
        skew: ClockSkew,
        restart: bool,
    },
    Qos {
        target: QosTarget,
        qos: Qos,
    },
    ClearQos,
    Block {
        from: String,
        to: String,
    },
    Heal,
    /// A fault schedule: the network's own (`None`) or this one; with `plan`, only its plan.
    Nemesis {
        spec: Option<NemesisSpec>,
        plan: bool,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "lowercase")]
pub(super) enum Answer {
    Done,
    Failed {
        error: String,
    },
    Status(Status),
    Logs {
        logs: Vec<Logs>,
    },
    Clock(ClockReport),
    /// The schedule's plan, and what it did when it ran.
    Nemesis {
        plan: String,
        history: Option<History>,
    },
    /// Comes with descriptors: the node's net, uts and mnt namespaces, its time namespace if
    /// `time`, and the socket to the clock supervisor if `page` (the node's clock page) is set.
    /// `env` carries the node's time zone.
    Enter {
        env: Vec<(String, String)>,
        time: bool,
        page: Option<String>,
    },
}

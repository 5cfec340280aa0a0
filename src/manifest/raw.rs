//! The manifest as TOML has it: every table and field, with its place in the file.

use std::collections::BTreeMap;
use std::num::NonZeroU16;

use serde::Deserialize;
use toml::Spanned;

use crate::config::Format;
use crate::shaping::Direction;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawManifest {
    pub(super) network: Spanned<RawNetwork>,
    #[serde(default)]
    pub(super) service: Vec<RawService>,
    #[serde(default)]
    pub(super) qos: Vec<Spanned<RawQos>>,
    #[serde(default)]
    pub(super) clock: Vec<Spanned<RawClock>>,
    /// The fault schedule, in the library's own form (durations as text).
    pub(super) nemesis: Option<Spanned<crate::spec::NemesisSpec>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNetwork {
    pub(super) name: Option<Spanned<String>>,
    /// A count or a list of names.
    pub(super) nodes: Spanned<toml::Value>,
    pub(super) subnet: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) ipv6: bool,
    pub(super) subnet6: Option<Spanned<String>>,
    pub(super) run_root: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) keep_data: bool,
    pub(super) wall_clock: Option<bool>,
    pub(super) url: Option<Spanned<String>>,
    pub(super) partition: Option<Spanned<Vec<Vec<Spanned<String>>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawService {
    pub(super) name: Spanned<String>,
    pub(super) command: Spanned<String>,
    #[serde(default)]
    pub(super) args: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, Spanned<String>>,
    pub(super) workdir: Option<Spanned<String>>,
    pub(super) ready: Option<Spanned<RawProbe>>,
    pub(super) ready_timeout: Option<Spanned<String>>,
    pub(super) after: Option<Spanned<Vec<String>>>,
    pub(super) stop_timeout: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) binds: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub(super) reset: Vec<Spanned<String>>,
    pub(super) restart_with: Option<Spanned<Vec<String>>>,
    pub(super) config: Option<Spanned<RawConfig>>,
}

/// A service's `config = { path = "...", format = "toml" }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub(super) path: Spanned<String>,
    pub(super) format: Format,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProbe {
    pub(super) http: Option<Spanned<String>>,
    pub(super) tcp: Option<NonZeroU16>,
}

/// A `[[qos]]` table: a node (`node`, `direction`) or a pair (`from`, `to`, `both_ways`),
/// and the shaping.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawQos {
    pub(super) node: Option<Spanned<String>>,
    pub(super) direction: Option<Spanned<Direction>>,
    pub(super) from: Option<Spanned<String>>,
    pub(super) to: Option<Spanned<String>>,
    pub(super) both_ways: Option<Spanned<bool>>,
    pub(super) delay: Option<Spanned<String>>,
    pub(super) jitter: Option<Spanned<String>>,
    pub(super) correlation: Option<Spanned<String>>,
    pub(super) distribution: Option<Spanned<String>>,
    pub(super) loss: Option<Spanned<String>>,
    pub(super) loss_correlation: Option<Spanned<String>>,
    pub(super) duplicate: Option<Spanned<String>>,
    pub(super) duplicate_correlation: Option<Spanned<String>>,
    pub(super) corrupt: Option<Spanned<String>>,
    pub(super) corrupt_correlation: Option<Spanned<String>>,
    pub(super) reorder: Option<Spanned<String>>,
    pub(super) reorder_correlation: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) gap: u32,
    pub(super) limit: Option<u32>,
    pub(super) rate: Option<Spanned<String>>,
}

/// A `[[clock]]` table: `offset` moves every clock, the others override it one by one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClock {
    pub(super) node: Spanned<String>,
    pub(super) offset: Option<Spanned<String>>,
    pub(super) realtime: Option<Spanned<String>>,
    pub(super) monotonic: Option<Spanned<String>>,
    pub(super) boottime: Option<Spanned<String>>,
    pub(super) drift: Option<Spanned<String>>,
    pub(super) tz: Option<Spanned<String>>,
}

//! What a fault schedule is made from: a seed, the kinds of fault ([`FaultKind`]), the time
//! between fault starts and the time each fault lasts ([`Range`]s), the schedule's length and
//! the services a fault may pick ([`NemesisSpec`]).
//!
//! Plain data, serialized with durations as text (`"2s"`, ranges as `"2s..5s"`) for the
//! manifest's `[nemesis]` table and the control protocol; [`NemesisSpec::validate`] checks it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};
use crate::units::{format_duration, parse_duration};

/// A kind of fault a schedule may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// SIGKILL of one service or of a whole node; started again when the fault ends.
    Kill,
    /// SIGSTOP of one service; SIGCONT when the fault ends.
    Pause,
    /// A graceful stop of one service or of a whole node; started again when the fault ends.
    Stop,
    /// The nodes split in two sides that cannot reach each other (see
    /// [`Shape`](crate::nemesis::Shape)); healed when the fault ends.
    Partition,
    /// What one node sends another is dropped, one way; healed when the fault ends.
    Block,
    /// A delay or loss spike on a node's links (needs sch_netem); cleared when the fault ends.
    Qos,
    /// A node's wall clock bumped forward or back, or drifting; restored when the fault ends.
    Clock,
}

impl FaultKind {
    /// Every kind, in the order plans and messages list them.
    pub const ALL: [FaultKind; 7] = [
        FaultKind::Kill,
        FaultKind::Pause,
        FaultKind::Stop,
        FaultKind::Partition,
        FaultKind::Block,
        FaultKind::Qos,
        FaultKind::Clock,
    ];

    /// The kind's name, as the CLI, the manifest and the timeline spell it.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::Kill => "kill",
            FaultKind::Pause => "pause",
            FaultKind::Stop => "stop",
            FaultKind::Partition => "partition",
            FaultKind::Block => "block",
            FaultKind::Qos => "qos",
            FaultKind::Clock => "clock",
        }
    }

    /// The kinds of a comma-separated list such as `kill,pause,partition`.
    pub fn parse_list(text: &str) -> Result<Vec<FaultKind>> {
        text.split(',').map(|name| name.trim().parse()).collect()
    }

    /// The names of every kind, comma-separated, for messages.
    fn names() -> String {
        FaultKind::ALL.map(FaultKind::name).join(", ")
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<FaultKind> {
        FaultKind::ALL
            .into_iter()
            .find(|kind| kind.name() == s)
            .ok_or_else(|| Error::invalid("fault kind", format!("'{s}' (allowed: {})", FaultKind::names())))
    }
}

impl Serialize for FaultKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for FaultKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<FaultKind, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A range of durations a schedule draws from, both ends included: written `2s..5s`, or one
/// duration (`3s`) for a range of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The shortest.
    pub min: Duration,
    /// The longest.
    pub max: Duration,
}

impl Range {
    /// From `min` to `max` (checked by [`NemesisSpec::validate`]).
    pub const fn new(min: Duration, max: Duration) -> Range {
        Range { min, max }
    }

    /// `d`, always.
    pub const fn exactly(d: Duration) -> Range {
        Range { min: d, max: d }
    }

    /// Reads `text` (`2s..5s`, or `3s`) as the range called `what` (`interval`, `hold`) in
    /// errors; a range written backwards is refused.
    pub fn parse(what: &str, text: &str) -> Result<Range> {
        let duration = |part: &str| {
            parse_duration(part.trim()).map_err(|_| {
                Error::invalid(
                    what,
                    format!(
                        "'{text}': write a range of durations like 2s..5s, or one like 3s \
                         (units: ns, us, ms, s, m, h, d)"
                    ),
                )
            })
        };
        let range = match text.split_once("..") {
            Some((min, max)) => Range::new(duration(min)?, duration(max)?),
            None => Range::exactly(duration(text)?),
        };
        range.check_order(what)?;
        Ok(range)
    }

    /// Checks that the range is positive and not written backwards.
    pub(super) fn check(self, what: &str) -> Result<()> {
        self.check_order(what)?;
        if self.min.is_zero() {
            return Err(Error::invalid(what, format!("{self} starts at 0: the shortest must be more than 0")));
        }
        Ok(())
    }

    fn check_order(self, what: &str) -> Result<()> {
        if self.min > self.max {
            let (first, last) = (format_duration(self.min), format_duration(self.max));
            return Err(Error::invalid(
                what,
                format!("{what} {first}..{last} is written backwards: write {last}..{first}"),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == self.max {
            f.write_str(&format_duration(self.min))
        } else {
            write!(f, "{}..{}", format_duration(self.min), format_duration(self.max))
        }
    }
}

impl FromStr for Range {
    type Err = Error;

    fn from_str(s: &str) -> Result<Range> {
        Range::parse("range", s)
    }
}

impl Serialize for Range {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Range {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Range, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A fault schedule to make: from `seed`, faults of the `faults` kinds, one starting every
/// `interval` (drawn anew each time), each lasting `hold`, for `length` in all.
///
/// ```
/// use netdriver::nemesis::{FaultKind, NemesisSpec};
/// use std::time::Duration;
///
/// let spec = NemesisSpec::new(7)
///     .faults([FaultKind::Kill, FaultKind::Pause, FaultKind::Partition])
///     .interval(Duration::from_secs(2), Duration::from_secs(5))
///     .hold(Duration::from_secs(1), Duration::from_secs(3))
///     .length(Duration::from_secs(60));
/// spec.validate()?;
/// # Ok::<(), netdriver::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NemesisSpec {
    /// What every draw of the schedule comes from: the same seed, node names and options give
    /// the same schedule.
    pub seed: u64,
    /// The kinds of fault to draw from, evenly (a set: the order does not matter).
    pub faults: Vec<FaultKind>,
    /// The time from one fault's start to the next one's (longer if a fault still holds).
    #[serde(default = "default_interval")]
    pub interval: Range,
    /// How long each fault lasts before it is undone.
    #[serde(default = "default_hold")]
    pub hold: Range,
    /// The whole schedule: no fault starts or lasts past it (`for` in the manifest and on the
    /// command line).
    #[serde(default = "default_length", with = "duration_text", alias = "for")]
    pub length: Duration,
    /// The services kill, pause and stop may pick; `None` for every service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<String>>,
    /// The services kill and stop may pick, when fewer than `services` survive a crash;
    /// `None` for the same as `services`. A whole node is killed or stopped only when every
    /// service may be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_services: Option<Vec<String>>,
}

/// The services a schedule that names none may put faults on: a profile's choice, e.g.
/// BigchainDB's, whose bigchaindb and tendermint cannot restart after every crash but can be
/// paused anywhere.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultServices {
    /// What kill, pause and stop may pick ([`NemesisSpec::services`]); `None` for every service.
    pub services: Option<Vec<String>>,
    /// What kill and stop may pick ([`NemesisSpec::kill_services`]); `None` for `services`.
    pub kill_services: Option<Vec<String>>,
}

fn default_interval() -> Range {
    Range::new(Duration::from_secs(2), Duration::from_secs(5))
}

fn default_hold() -> Range {
    Range::new(Duration::from_secs(1), Duration::from_secs(3))
}

fn default_length() -> Duration {
    Duration::from_secs(60)
}

impl NemesisSpec {
    /// A schedule drawn from `seed`: no fault kinds yet (name them with
    /// [`NemesisSpec::faults`]), a fault every 2s..5s holding 1s..3s, for 60s, on every
    /// service.
    pub fn new(seed: u64) -> NemesisSpec {
        NemesisSpec {
            seed,
            faults: Vec::new(),
            interval: default_interval(),
            hold: default_hold(),
            length: default_length(),
            services: None,
            kill_services: None,
        }
    }

    /// Draws faults of these kinds.
    pub fn faults(mut self, kinds: impl IntoIterator<Item = FaultKind>) -> NemesisSpec {
        self.faults = kinds.into_iter().collect();
        self
    }

    /// Starts a fault every `min..max` (from the previous fault's start).
    pub fn interval(mut self, min: Duration, max: Duration) -> NemesisSpec {
        self.interval = Range::new(min, max);
        self
    }

    /// Holds each fault for `min..max`.
    pub fn hold(mut self, min: Duration, max: Duration) -> NemesisSpec {
        self.hold = Range::new(min, max);
        self
    }

    /// Runs for `length` in all.
    pub fn length(mut self, length: Duration) -> NemesisSpec {
        self.length = length;
        self
    }

    /// Lets kill, pause and stop pick only these services.
    pub fn services<S: Into<String>>(mut self, services: impl IntoIterator<Item = S>) -> NemesisSpec {
        self.services = Some(services.into_iter().map(Into::into).collect());
        self
    }

    /// Lets kill and stop pick only these services (pause still picks among
    /// [`services`](Self::services)).
    pub fn kill_services<S: Into<String>>(mut self, services: impl IntoIterator<Item = S>) -> NemesisSpec {
        self.kill_services = Some(services.into_iter().map(Into::into).collect());
        self
    }

    /// This spec, its unnamed services taken from `defaults`. Services named here are kept; a
    /// spec that names `services` alone kills among them too, not among the defaults'.
    pub(crate) fn defaulted(&self, defaults: &FaultServices) -> NemesisSpec {
        let kill_default = if self.services.is_none() { defaults.kill_services.clone() } else { None };
        NemesisSpec {
            services: self.services.clone().or_else(|| defaults.services.clone()),
            kill_services: self.kill_services.clone().or(kill_default),
            ..self.clone()
        }
    }

    /// Checks what needs no network: at least one fault kind, none twice, positive ranges
    /// not written backwards, a length, and lists of services, if any, that are not empty.
    pub fn validate(&self) -> Result<()> {
        if self.faults.is_empty() {
            return Err(Error::invalid(
                "nemesis",
                format!("no fault kinds: name at least one of {}", FaultKind::names()),
            ));
        }
        if let Some(kind) = self.faults.iter().enumerate().find_map(|(i, k)| self.faults[..i].contains(k).then_some(k))
        {
            return Err(Error::invalid("nemesis", format!("the fault kind {kind} is named twice: name it once")));
        }
        self.interval.check("interval")?;
        self.hold.check("hold")?;
        if self.length.is_zero() {
            return Err(Error::invalid("nemesis", "the schedule lasts 0: give it a length (for), e.g. 60s"));
        }
        for (list, what) in [(&self.services, "services"), (&self.kill_services, "kill_services")] {
            if list.as_ref().is_some_and(Vec::is_empty) {
                return Err(Error::invalid(
                    "nemesis",
                    format!("the list of {what} a fault may pick is empty: name at least one, or leave it out"),
                ));
            }
        }
        Ok(())
    }
}

/// Serde of a [`Duration`] as its text (`"1.5s"`), with the one rule of [`crate::units`].
pub(crate) mod duration_text {
    use super::{format_duration, parse_duration, Deserialize, Deserializer, Duration, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format_duration(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        parse_duration(&String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn kinds_parse_print_and_name_the_allowed_ones() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.to_string().parse::<FaultKind>().unwrap(), kind);
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.name());
        }
        let list = FaultKind::parse_list("kill, pause,partition").unwrap();
        assert_eq!(list, [FaultKind::Kill, FaultKind::Pause, FaultKind::Partition]);
        let err = "explode".parse::<FaultKind>().unwrap_err().to_string();
        assert_eq!(err, "invalid fault kind: 'explode' (allowed: kill, pause, stop, partition, block, qos, clock)");
        assert!(FaultKind::parse_list("kill,,pause").is_err());
        let err = serde_json::from_str::<FaultKind>("\"Kill\"").unwrap_err().to_string();
        assert!(err.contains("allowed: kill, pause"), "{err}");
    }

    #[test]
    fn ranges_parse_and_refuse_backwards() {
        assert_eq!("2s..5s".parse::<Range>().unwrap(), Range::new(S(2), S(5)));
        assert_eq!("3s".parse::<Range>().unwrap(), Range::exactly(S(3)));
        assert_eq!("500ms .. 1.5s".parse::<Range>().unwrap(), Range::new(Duration::from_millis(500), S(1) * 3 / 2));
        assert_eq!(Range::new(S(2), S(5)).to_string(), "2s..5s");
        assert_eq!(Range::exactly(S(3)).to_string(), "3s");
        let err = Range::parse("interval", "5s..2s").unwrap_err().to_string();
        assert_eq!(err, "invalid interval: interval 5s..2s is written backwards: write 2s..5s");
        for bad in ["", "2s..", "..5s", "2..5", "2s..5s..7s", "fast"] {
            let err = Range::parse("hold", bad).unwrap_err().to_string();
            assert!(err.starts_with(&format!("invalid hold: '{bad}': write a range")), "{err}");
        }
    }

    #[test]
    fn the_builder_and_serde_agree() {
        let spec = NemesisSpec::new(7)
            .faults([FaultKind::Kill, FaultKind::Partition])
            .interval(S(2), S(5))
            .hold(S(1), S(3))
            .length(S(90))
            .services(["db", "tendermint"]);
        spec.validate().unwrap();
        let json = serde_json::to_value(&spec).unwrap();
        let want = serde_json::json!({
            "seed": 7, "faults": ["kill", "partition"], "interval": "2s..5s", "hold": "1s..3s",
            "length": "90s", "services": ["db", "tendermint"]
        });
        assert_eq!(json, want);
        assert_eq!(serde_json::from_value::<NemesisSpec>(json).unwrap(), spec);
        let toml: NemesisSpec = toml::from_str("seed = 7\nfaults = [\"kill\"]\nfor = \"90s\"\n").unwrap();
        assert_eq!(toml, NemesisSpec::new(7).faults([FaultKind::Kill]).length(S(90)));
        let err = toml::from_str::<NemesisSpec>("seed = 1\nfaults = [\"kill\"]\ninterval = \"5s..2s\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("range 5s..2s is written backwards: write 2s..5s"), "{err}");
        assert!(toml::from_str::<NemesisSpec>("seed = 1\nfaults = []\nspeed = 2\n").is_err());
    }

    #[test]
    fn unnamed_services_come_from_the_defaults() {
        let defaults =
            FaultServices { services: Some(vec!["a".into(), "b".into()]), kill_services: Some(vec!["a".into()]) };
        let spec = NemesisSpec::new(1).faults([FaultKind::Kill]);
        let both = spec.defaulted(&defaults);
        assert_eq!((both.services, both.kill_services), (defaults.services.clone(), defaults.kill_services.clone()));
        // Services named alone are killed among too; kill services named alone keep the
        // default's services for pause.
        let named = spec.clone().services(["b"]).defaulted(&defaults);
        assert_eq!((named.services, named.kill_services), (Some(vec!["b".to_string()]), None));
        let kill_only = spec.clone().kill_services(["b"]).defaulted(&defaults);
        assert_eq!((kill_only.services, kill_only.kill_services), (defaults.services, Some(vec!["b".to_string()])));
        assert_eq!(spec.defaulted(&FaultServices::default()), spec);
    }

    #[test]
    fn bad_specs_are_refused() {
        let ok = || NemesisSpec::new(1).faults([FaultKind::Kill]);
        ok().validate().unwrap();
        let cases = [
            (NemesisSpec::new(1), "no fault kinds: name at least one of kill, pause, stop"),
            (ok().faults([FaultKind::Kill, FaultKind::Pause, FaultKind::Kill]), "the fault kind kill is named twice"),
            (ok().interval(S(5), S(2)), "invalid interval: interval 5s..2s is written backwards: write 2s..5s"),
            (ok().hold(S(3), S(1)), "invalid hold: hold 3s..1s is written backwards: write 1s..3s"),
            (ok().interval(Duration::ZERO, S(1)), "invalid interval: 0..1s starts at 0"),
            (ok().hold(Duration::ZERO, Duration::ZERO), "invalid hold: 0 starts at 0"),
            (ok().length(Duration::ZERO), "the schedule lasts 0"),
            (ok().services(Vec::<String>::new()), "the list of services a fault may pick is empty"),
            (ok().kill_services(Vec::<String>::new()), "the list of kill_services a fault may pick is empty"),
        ];
        for (spec, phrase) in cases {
            let err = spec.validate().unwrap_err().to_string();
            assert!(err.contains(phrase), "{err} lacks {phrase}");
        }
    }
}

//! Per-node clocks, as values: how far a node's clocks are from the host's ([`ClockSkew`]: an
//! [`Offset`] per clock, a [`Drift`] of the wall clock, a time zone), and what a change meant
//! ([`ClockReport`]).
//!
//! How they are applied: the wall clock (CLOCK_REALTIME and its kin) by the node's clock page,
//! which every program of the node reads through the vDSO and which changes under running
//! programs at once ([`crate::wallclock`]); CLOCK_MONOTONIC and CLOCK_BOOTTIME by a time
//! namespace, whose offsets are fixed once a process is inside, so a change of them reaches
//! processes started after it (running services keep theirs until restarted); the time zone
//! by `TZ`, which a process reads when it starts.

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::units::{format_duration, parse_duration};

/// A signed shift of a clock; serialized as its text (`"+30s"`), checked when read back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Offset {
    nanos: i64,
}

impl Offset {
    /// No shift.
    pub const ZERO: Offset = Offset { nanos: 0 };

    /// Ahead of the host by `d`.
    pub fn ahead(d: Duration) -> Offset {
        Offset { nanos: d.as_nanos().min(i64::MAX as u128) as i64 }
    }

    /// Behind the host by `d`.
    pub fn behind(d: Duration) -> Offset {
        Offset { nanos: -Offset::ahead(d).nanos }
    }

    /// The shift in nanoseconds (negative: behind).
    pub fn as_nanos(self) -> i64 {
        self.nanos
    }

    /// Whole seconds and the nanosecond rest, as `/proc/PID/timens_offsets` wants them.
    pub(crate) fn secs_nanos(self) -> (i64, i64) {
        (self.nanos.div_euclid(1_000_000_000), self.nanos.rem_euclid(1_000_000_000))
    }
}

impl std::str::FromStr for Offset {
    type Err = Error;
    /// `+1h`, `-30s`, `90m` (no sign: ahead).
    fn from_str(s: &str) -> Result<Offset> {
        let (behind, magnitude) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let too_long =
            || Error::invalid("clock offset", format!("'{s}' is too long: a clock moves by at most 292 years"));
        let d = parse_duration(magnitude).map_err(|e| match e {
            // A well-formed duration past u64 nanoseconds.
            Error::Invalid { message, .. } if message.ends_with("is too long") => too_long(),
            _ => Error::invalid("clock offset", format!("'{s}': use a signed duration like +1h, -30s, +1.5s")),
        })?;
        if i64::try_from(d.as_nanos()).is_err() {
            return Err(too_long());
        }
        Ok(if behind { Offset::behind(d) } else { Offset::ahead(d) })
    }
}

impl std::fmt::Display for Offset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.nanos < 0 { '-' } else { '+' };
        write!(f, "{sign}{}", format_duration(Duration::from_nanos(self.nanos.unsigned_abs())))
    }
}

impl serde::Serialize for Offset {
    /// Its text when that reads back the same (`+30s`), else in whole nanoseconds
    /// (`+1000000500ns`): never rounded.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let text = self.to_string();
        if text.parse::<Offset>().is_ok_and(|back| back == *self) {
            serializer.serialize_str(&text)
        } else {
            let sign = if self.nanos < 0 { '-' } else { '+' };
            serializer.collect_str(&format_args!("{sign}{}ns", self.nanos.unsigned_abs()))
        }
    }
}

impl<'de> serde::Deserialize<'de> for Offset {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Offset, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(serde::de::Error::custom)
    }
}

/// How fast a node's wall clock runs against the host's: `+200ppm` runs 200 µs a second
/// ahead, `-0.1%` a millisecond a second behind. Stored in parts per billion; serialized as
/// its text, checked when read back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Drift {
    ppb: i64,
}

impl Drift {
    /// The same pace as the host's.
    pub const NONE: Drift = Drift { ppb: 0 };
    /// The fastest or slowest a clock may run: 10% (the clock page's arithmetic allows more,
    /// a test needs no more).
    const MAX_PPB: i64 = 100_000_000;

    /// A drift of `ppb` parts per billion.
    pub fn from_ppb(ppb: i64) -> Result<Drift> {
        if ppb.abs() > Drift::MAX_PPB {
            return Err(Error::invalid(
                "clock drift",
                format!("{} is too fast or too slow: a clock drifts by at most 10% (100000ppm)", Drift { ppb }),
            ));
        }
        Ok(Drift { ppb })
    }

    /// The drift in parts per billion.
    pub fn as_ppb(self) -> i64 {
        self.ppb
    }
}

impl std::str::FromStr for Drift {
    type Err = Error;
    /// `+200ppm`, `-0.1%`, `50ppb`, `0` (no sign: faster).
    fn from_str(s: &str) -> Result<Drift> {
        let bad = || {
            Error::invalid(
                "clock drift",
                format!("'{s}': use a signed rate like +200ppm, -50ppm, +0.1%, 100ppb (0 for none)"),
            )
        };
        if s == "0" {
            return Ok(Drift::NONE);
        }
        let (number, scale) = [("ppb", 1.0), ("ppm", 1_000.0), ("%", 10_000_000.0)]
            .iter()
            .find_map(|(unit, scale)| s.strip_suffix(unit).map(|n| (n, *scale)))
            .ok_or_else(bad)?;
        let magnitude = number.strip_prefix(['+', '-']).unwrap_or(number);
        if magnitude.starts_with(['+', '-']) {
            return Err(bad());
        }
        let value: f64 = number.strip_prefix('+').unwrap_or(number).parse().map_err(|_| bad())?;
        let ppb = (value * scale).round();
        if !ppb.is_finite() || ppb.abs() > 1e15 {
            return Err(bad());
        }
        Drift::from_ppb(ppb as i64)
    }
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.ppb < 0 { '-' } else { '+' };
        let ppb = self.ppb.unsigned_abs();
        if ppb % 1000 == 0 {
            write!(f, "{sign}{}ppm", ppb / 1000)
        } else {
            write!(f, "{sign}{ppb}ppb")
        }
    }
}

impl serde::Serialize for Drift {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Drift {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Drift, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How a node's clocks differ from the host's.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClockSkew {
    /// How far the wall clock (CLOCK_REALTIME, _COARSE, _ALARM, CLOCK_TAI, `gettimeofday`,
    /// `time`) is ahead when the setting is made.
    pub realtime: Offset,
    /// How fast the wall clock runs from then on.
    #[serde(default)]
    pub drift: Drift,
    /// CLOCK_MONOTONIC, through the node's time namespace.
    pub monotonic: Offset,
    /// CLOCK_BOOTTIME, through the node's time namespace.
    pub boottime: Offset,
    /// The time zone, e.g. `Asia/Tokyo` (a name under /usr/share/zoneinfo).
    pub tz: Option<String>,
}

impl ClockSkew {
    /// The keys [`ClockSkew::from_settings`] takes: the manifest's `[[clock]]` fields.
    pub const SETTINGS: [&'static str; 6] = ["offset", "drift", "realtime", "monotonic", "boottime", "tz"];

    /// Every clock shifted by `offset`, at the host's pace, in the host's time zone.
    pub fn offset(offset: Offset) -> ClockSkew {
        ClockSkew { realtime: offset, drift: Drift::NONE, monotonic: offset, boottime: offset, tz: None }
    }

    /// A validated skew from `key = value` text pairs (keys as in [`ClockSkew::SETTINGS`]):
    /// `offset` moves every clock, `realtime`, `monotonic` and `boottime` override it one by
    /// one (signed durations like `+1h`), `drift` sets the wall clock's pace (`+200ppm`), `tz`
    /// the time zone. The error names the key.
    pub fn from_settings<'a>(settings: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<ClockSkew> {
        let (mut all, mut one) = (Offset::ZERO, [None; 3]);
        let (mut tz, mut drift) = (None, Drift::NONE);
        for (key, value) in settings {
            let offset = || value.parse::<Offset>();
            match key {
                "offset" => all = offset()?,
                "realtime" => one[0] = Some(offset()?),
                "monotonic" => one[1] = Some(offset()?),
                "boottime" => one[2] = Some(offset()?),
                "drift" => drift = value.parse()?,
                "tz" => tz = Some(value.to_string()),
                other => {
                    return Err(Error::invalid(
                        "clock",
                        format!("unknown setting '{other}'; known: {}", ClockSkew::SETTINGS.join(", ")),
                    ))
                }
            }
        }
        let [realtime, monotonic, boottime] = one.map(|o| o.unwrap_or(all));
        let skew = ClockSkew { realtime, drift, monotonic, boottime, tz };
        skew.validate()?;
        Ok(skew)
    }

    /// Sets the time zone.
    pub fn tz(mut self, tz: impl Into<String>) -> ClockSkew {
        self.tz = Some(tz.into());
        self
    }

    /// Sets the wall clock's drift.
    pub fn drift(mut self, drift: Drift) -> ClockSkew {
        self.drift = drift;
        self
    }

    /// Checks the time zone and that every clock stays within the kernel's range.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(tz) = &self.tz {
            check_zone(tz)?;
        }
        let clocks = [
            ("CLOCK_REALTIME", nix::time::ClockId::CLOCK_REALTIME, self.realtime),
            ("CLOCK_MONOTONIC", nix::time::ClockId::CLOCK_MONOTONIC, self.monotonic),
            ("CLOCK_BOOTTIME", nix::time::ClockId::CLOCK_BOOTTIME, self.boottime),
        ];
        for (name, id, offset) in clocks {
            check_range(name, id, offset)?;
        }
        Ok(())
    }

    /// Whether the wall clock differs from the host's (its offset or its pace).
    pub fn moves_wall_clock(&self) -> bool {
        self.realtime != Offset::ZERO || self.drift != Drift::NONE
    }

    /// Whether the monotonic or boottime clock moves (a time namespace is needed).
    pub(crate) fn needs_namespace(&self) -> bool {
        self.monotonic != Offset::ZERO || self.boottime != Offset::ZERO
    }

    /// Whether going from `self` to `next` changes what only a restart brings to a running
    /// process: the time namespace's clocks, or the time zone.
    pub(crate) fn restart_needed_for(&self, next: &ClockSkew) -> bool {
        (self.monotonic, self.boottime, &self.tz) != (next.monotonic, next.boottime, &next.tz)
    }

    /// The environment that applies the time zone to a process.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        self.tz.iter().map(|tz| ("TZ".to_string(), tz.clone())).collect()
    }
}

/// The longest a clock may read, in seconds: the kernel's own bound for time namespaces
/// (`KTIME_SEC_MAX / 2`, about 146 years), used for every clock.
const MAX_CLOCK_SECS: i64 = 4_611_686_018;

/// Checks that `offset` keeps the clock `name` within 0 and [`MAX_CLOCK_SECS`] seconds.
fn check_range(name: &str, id: nix::time::ClockId, offset: Offset) -> Result<()> {
    if offset == Offset::ZERO {
        return Ok(());
    }
    let now = nix::time::clock_gettime(id).map_err(|e| Error::io(format!("reading {name}"), e))?.tv_sec();
    let (secs, _) = offset.secs_nanos();
    let reads = now.saturating_add(secs);
    if (0..=MAX_CLOCK_SECS).contains(&reads) {
        return Ok(());
    }
    Err(Error::invalid(
        "clock offset",
        format!(
            "{offset} for {name}: the clock would read {reads} s, outside the kernel's 0 to {MAX_CLOCK_SECS} s \
             (about 146 years); use an offset from -{now}s to +{}s",
            MAX_CLOCK_SECS - now
        ),
    ))
}

/// Checks that `tz` names a zone of the zone database: a relative name such as `Asia/Tokyo`
/// or `UTC` whose file under /usr/share/zoneinfo is a TZif file.
fn check_zone(tz: &str) -> Result<()> {
    let plain = !tz.is_empty() && Path::new(tz).components().all(|c| matches!(c, std::path::Component::Normal(_)));
    let file = Path::new("/usr/share/zoneinfo").join(tz);
    let tzif = plain
        && std::fs::File::open(&file).ok().and_then(|mut f| {
            let mut magic = [0u8; 4];
            std::io::Read::read_exact(&mut f, &mut magic).ok()?;
            Some(magic == *b"TZif")
        }) == Some(true);
    if tzif {
        Ok(())
    } else {
        Err(Error::invalid(
            "time zone",
            format!("'{tz}' is not a zone of /usr/share/zoneinfo (e.g. Asia/Tokyo, UTC); install tzdata for more"),
        ))
    }
}

/// What a clock change meant for a node's services.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClockReport {
    /// Services running with the old monotonic or boottime clock or time zone: they get the
    /// new one when restarted. (The wall clock changes under running programs at once.)
    pub restart_needed: Vec<String>,
    /// Services restarted to get the new clocks (asked for with `restart`).
    pub restarted: Vec<String>,
    /// Programs of the node that run on the host's wall clock, and why (the supervisor could
    /// not shift them when they started).
    pub unreached: Vec<(String, String)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_and_print() {
        let o: Offset = "+1h".parse().unwrap();
        assert_eq!(o.as_nanos(), 3_600_000_000_000);
        assert_eq!(o.to_string(), "+1h");
        let o: Offset = "-1.5s".parse().unwrap();
        assert_eq!(o.secs_nanos(), (-2, 500_000_000));
        assert_eq!(o.to_string(), "-1.5s");
        assert_eq!("90m".parse::<Offset>().unwrap(), Offset::ahead(Duration::from_secs(5400)));
        assert!("+1 fortnight".parse::<Offset>().is_err());
    }

    #[test]
    fn offsets_serialize_as_text_never_rounded() {
        let cases = [
            (Offset::ahead(Duration::from_secs(30)), "+30s"),
            (Offset::behind(Duration::from_millis(1500)), "-1.5s"),
            (Offset::ZERO, "+0"),
            (Offset::ahead(Duration::from_nanos(1_000_000_500)), "+1000000500ns"),
            (Offset::behind(Duration::from_nanos(i64::MAX as u64)), "-9223372036854775807ns"),
        ];
        for (offset, text) in cases {
            let json = serde_json::to_value(offset).unwrap();
            assert_eq!(json, text);
            assert_eq!(serde_json::from_value::<Offset>(json).unwrap(), offset, "{text}");
        }
        assert!(serde_json::from_str::<Offset>("\"+1 fortnight\"").is_err());
    }

    #[test]
    fn drifts_parse_and_print() {
        let cases = [
            ("+200ppm", 200_000),
            ("200ppm", 200_000),
            ("-50ppm", -50_000),
            ("+0.1%", 1_000_000),
            ("-0.1%", -1_000_000),
            ("7ppb", 7),
            ("0", 0),
            ("+100000ppm", 100_000_000),
        ];
        for (text, ppb) in cases {
            assert_eq!(text.parse::<Drift>().unwrap().as_ppb(), ppb, "{text}");
        }
        assert_eq!("+200ppm".parse::<Drift>().unwrap().to_string(), "+200ppm");
        assert_eq!("-7ppb".parse::<Drift>().unwrap().to_string(), "-7ppb");
        for bad in ["abc", "1e9ppm", "200", "ppm", "+-1ppm", "1e400%", "NaN%", "+100001ppm"] {
            let err = bad.parse::<Drift>().unwrap_err().to_string();
            assert!(err.contains("clock drift"), "{bad}: {err}");
        }
        assert!("1e9ppm".parse::<Drift>().unwrap_err().to_string().contains("at most 10%"));
    }

    #[test]
    fn settings_and_what_needs_a_restart() {
        let skew =
            ClockSkew::from_settings([("offset", "+1h"), ("drift", "+200ppm"), ("boottime", "+2h"), ("tz", "UTC")])
                .unwrap();
        assert_eq!((skew.realtime, skew.monotonic), ("+1h".parse().unwrap(), "+1h".parse().unwrap()));
        assert_eq!(skew.boottime, "+2h".parse().unwrap());
        assert_eq!(skew.drift.as_ppb(), 200_000);
        assert!(skew.moves_wall_clock() && skew.needs_namespace());
        let wall_only = ClockSkew { realtime: "+1d".parse().unwrap(), ..ClockSkew::default() };
        assert!(!ClockSkew::default().restart_needed_for(&wall_only), "the wall clock changes live");
        assert!(ClockSkew::default().restart_needed_for(&ClockSkew::default().tz("UTC")));
        assert!(ClockSkew::default().restart_needed_for(&skew));
        let err = ClockSkew::from_settings([("speed", "2x")]).unwrap_err().to_string();
        assert!(err.contains("unknown setting 'speed'; known: offset, drift"), "{err}");
        assert!(ClockSkew::default().tz("Nowhere/Atlantis").validate().is_err());
        assert_eq!(ClockSkew::default().tz("Asia/Tokyo").env(), [("TZ".to_string(), "Asia/Tokyo".to_string())]);
    }
}

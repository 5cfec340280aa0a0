//! Per-node clocks: how far a node's clocks are from the host's, and how that is applied.
//!
//! - CLOCK_MONOTONIC and CLOCK_BOOTTIME: a time namespace per node, with the offsets written
//!   before any process enters it. Offsets cannot change once a process is inside, so a new
//!   setting makes a new namespace: processes started after it see the new clocks, running
//!   ones keep theirs until restarted.
//! - CLOCK_REALTIME (the wall clock): time namespaces do not cover it. libfaketime
//!   (`LD_PRELOAD`) shifts it for dynamically linked programs that read time through libc; it
//!   cannot reach static binaries or Go programs (which read the clock without libc), and
//!   [`ClockReport`] names the services it misses.
//! - The time zone: `TZ`.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::units::{format_duration, parse_duration};

/// A signed shift of a clock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
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

/// How a node's clocks differ from the host's.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClockSkew {
    /// The wall clock (CLOCK_REALTIME), through libfaketime.
    pub realtime: Offset,
    /// CLOCK_MONOTONIC, through the node's time namespace.
    pub monotonic: Offset,
    /// CLOCK_BOOTTIME, through the node's time namespace.
    pub boottime: Offset,
    /// The time zone, e.g. `Asia/Tokyo` (a name under /usr/share/zoneinfo).
    pub tz: Option<String>,
}

impl ClockSkew {
    /// Every clock shifted by `offset`, in the host's time zone.
    pub fn offset(offset: Offset) -> ClockSkew {
        ClockSkew { realtime: offset, monotonic: offset, boottime: offset, tz: None }
    }

    /// A validated skew from `key = value` text pairs: `offset` moves every clock,
    /// `realtime`, `monotonic` and `boottime` override it one by one (signed durations like
    /// `+1h`), `tz` sets the time zone.
    pub fn from_settings<'a>(settings: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<ClockSkew> {
        let (mut all, mut one) = (Offset::ZERO, [None; 3]);
        let mut tz = None;
        for (key, value) in settings {
            let offset = || value.parse::<Offset>();
            match key {
                "offset" => all = offset()?,
                "realtime" => one[0] = Some(offset()?),
                "monotonic" => one[1] = Some(offset()?),
                "boottime" => one[2] = Some(offset()?),
                "tz" => tz = Some(value.to_string()),
                other => {
                    return Err(Error::invalid(
                        "clock",
                        format!("unknown setting '{other}'; known: offset, realtime, monotonic, boottime, tz"),
                    ))
                }
            }
        }
        let [realtime, monotonic, boottime] = one.map(|o| o.unwrap_or(all));
        let skew = ClockSkew { realtime, monotonic, boottime, tz };
        skew.validate()?;
        Ok(skew)
    }

    /// Sets the time zone.
    pub fn tz(mut self, tz: impl Into<String>) -> ClockSkew {
        self.tz = Some(tz.into());
        self
    }

    /// Checks the time zone and that libfaketime is there when the wall clock moves.
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
        if self.realtime != Offset::ZERO && faketime_library().is_none() {
            return Err(Error::missing_binary("wall-clock offsets", "libfaketime.so.1 (Debian: libfaketime)"));
        }
        Ok(())
    }

    /// The environment that applies the wall clock and time zone to a process.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if self.realtime != Offset::ZERO {
            if let Some(lib) = faketime_library() {
                let preload = match std::env::var("LD_PRELOAD") {
                    Ok(existing) if !existing.is_empty() => format!("{}:{existing}", lib.display()),
                    _ => lib.display().to_string(),
                };
                env.push(("LD_PRELOAD".into(), preload));
                let (secs, nanos) = self.realtime.secs_nanos();
                env.push(("FAKETIME".into(), format!("{:+}", secs as f64 + nanos as f64 / 1e9)));
                // The time namespace already shifts the monotonic clock.
                env.push(("DONT_FAKE_MONOTONIC".into(), "1".into()));
            }
        }
        if let Some(tz) = &self.tz {
            env.push(("TZ".into(), tz.clone()));
        }
        env
    }

    /// Whether the monotonic or boottime clock moves (a time namespace is needed).
    pub(crate) fn needs_namespace(&self) -> bool {
        self.monotonic != Offset::ZERO || self.boottime != Offset::ZERO
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

/// A node's clock setting and the time namespace that carries it.
#[derive(Debug)]
pub(crate) struct NodeClock {
    pub(crate) skew: ClockSkew,
    pub(crate) timens: Option<OwnedFd>,
}

/// What a clock change means for a node's services.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClockReport {
    /// Services running with the old clocks: they get the new ones when restarted.
    pub restart_needed: Vec<String>,
    /// Services restarted to get the new clocks (asked for with `restart`).
    pub restarted: Vec<String>,
    /// Services whose program libfaketime cannot reach, with the reason: their wall clock
    /// stays the host's.
    pub wall_clock_unchanged: Vec<(String, String)>,
}

/// Why libfaketime cannot shift `program`'s wall clock, if it cannot.
pub(crate) fn faketime_blind_spot(program: &Path) -> Option<String> {
    let data = std::fs::read(program).ok()?;
    let elf = Elf::parse(&data)?;
    if elf.sections().any(|name| name == b".go.buildinfo" || name == b".note.go.buildid") {
        return Some(format!("{} is a Go program: it reads the clock without libc", program.display()));
    }
    if !elf.has_interpreter() {
        return Some(format!("{} is statically linked: LD_PRELOAD does not apply", program.display()));
    }
    None
}

fn faketime_library() -> Option<PathBuf> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/faketime/libfaketime.so.1",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// Just enough of a 64-bit little-endian ELF file: program header types and section names.
struct Elf<'a> {
    data: &'a [u8],
}

impl<'a> Elf<'a> {
    fn parse(data: &'a [u8]) -> Option<Elf<'a>> {
        (data.get(..6)? == b"\x7fELF\x02\x01").then_some(Elf { data })
    }

    fn u16(&self, at: usize) -> Option<usize> {
        Some(u16::from_le_bytes(self.data.get(at..at + 2)?.try_into().ok()?) as usize)
    }

    fn u32(&self, at: usize) -> Option<usize> {
        Some(u32::from_le_bytes(self.data.get(at..at + 4)?.try_into().ok()?) as usize)
    }

    fn u64(&self, at: usize) -> Option<usize> {
        Some(u64::from_le_bytes(self.data.get(at..at + 8)?.try_into().ok()?) as usize)
    }

    /// Whether a PT_INTERP header names a dynamic loader.
    fn has_interpreter(&self) -> bool {
        let (Some(off), Some(size), Some(count)) = (self.u64(0x20), self.u16(0x36), self.u16(0x38)) else {
            return false;
        };
        (0..count).any(|i| self.u32(off + i * size) == Some(3))
    }

    fn sections(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        let table = || -> Option<(usize, usize, usize, usize)> {
            let (off, size, count, names) = (self.u64(0x28)?, self.u16(0x3a)?, self.u16(0x3c)?, self.u16(0x3e)?);
            let strtab = self.u64(off + names * size + 0x18)?;
            Some((off, size, count, strtab))
        };
        let (off, size, count, strtab) = table().unwrap_or_default();
        (0..count).filter_map(move |i| {
            let name = strtab + self.u32(off + i * size)?;
            let rest = self.data.get(name..)?;
            Some(&rest[..rest.iter().position(|&b| b == 0)?])
        })
    }
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
    fn environment() {
        let env = ClockSkew::offset("+1h".parse().unwrap()).tz("Asia/Tokyo").env();
        let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        assert_eq!(get("TZ").as_deref(), Some("Asia/Tokyo"));
        if faketime_library().is_some() {
            assert_eq!(get("FAKETIME").as_deref(), Some("+3600"));
            assert_eq!(get("DONT_FAKE_MONOTONIC").as_deref(), Some("1"));
        }
        assert!(ClockSkew::default().env().is_empty());
        assert!(ClockSkew::default().tz("Nowhere/Atlantis").validate().is_err());
    }

    #[test]
    fn finds_blind_spots() {
        let me = std::env::current_exe().unwrap();
        assert_eq!(faketime_blind_spot(&me), None, "a Rust test binary links libc dynamically");
        assert_eq!(faketime_blind_spot(Path::new("/bin/sh")), None);
    }
}

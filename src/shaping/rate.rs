//! Link rates as tc writes them: `10mbit`, `1gbit`, `500kbit`, `1mbps`.

use crate::error::{Error, Result};

/// tc's rate units (matched ignoring case) and their size in bits per second. `k`, `m`, `g` and
/// `t` are powers of 1000, `ki`, `mi`, `gi` and `ti` powers of 1024, and `bps` is *bytes* per
/// second.
const UNITS: [(&str, f64); 18] = [
    ("bit", 1.0),
    ("kibit", 1024.0),
    ("kbit", 1e3),
    ("mibit", 1024.0 * 1024.0),
    ("mbit", 1e6),
    ("gibit", 1024.0 * 1024.0 * 1024.0),
    ("gbit", 1e9),
    ("tibit", 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("tbit", 1e12),
    ("bps", 8.0),
    ("kibps", 8.0 * 1024.0),
    ("kbps", 8e3),
    ("mibps", 8.0 * 1024.0 * 1024.0),
    ("mbps", 8e6),
    ("gibps", 8.0 * 1024.0 * 1024.0 * 1024.0),
    ("gbps", 8e9),
    ("tibps", 8.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
    ("tbps", 8e12),
];

/// A link rate, in bits per second.
///
/// Parsed as tc parses rates: a decimal number and one of tc's units, matched ignoring case:
/// `bit`, `kbit`, `mbit`, `gbit`, `tbit` (powers of 1000), `kibit`, `mibit`, `gibit`, `tibit`
/// (powers of 1024), and the same with `bps` for **bytes** per second (`1mbps` is 8 Mbit/s).
/// Unlike tc, the unit is required. Shown in the largest decimal bit unit that is exact, e.g.
/// `10mbit` or `1500kbit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Rate(u64);

impl Rate {
    /// A rate of `bits` bits per second.
    pub const fn from_bits_per_sec(bits: u64) -> Rate {
        Rate(bits)
    }

    /// The rate in bits per second.
    pub const fn bits_per_sec(self) -> u64 {
        self.0
    }

    /// The rate in bytes per second, rounded down as tc does: the unit the kernel takes.
    pub const fn bytes_per_sec(self) -> u64 {
        self.0 / 8
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (unit, size) = [("tbit", 1_000_000_000_000), ("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1000)]
            .into_iter()
            .find(|&(_, size)| self.0 >= size && self.0 % size == 0)
            .unwrap_or(("bit", 1));
        write!(f, "{}{unit}", self.0 / size)
    }
}

impl std::str::FromStr for Rate {
    type Err = Error;

    fn from_str(s: &str) -> Result<Rate> {
        let bad = || {
            Error::invalid(
                "rate",
                format!("'{s}' (use e.g. 10mbit, 500kbit, 1gbit; units: bit, kbit, mbit, gbit, tbit, kibit, mibit, gibit, tibit, and bps, kbps, ... for bytes per second)"),
            )
        };
        let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?;
        let (number, unit) = s.split_at(split);
        let (_, size) = UNITS.iter().find(|(u, _)| u.eq_ignore_ascii_case(unit)).ok_or_else(bad)?;
        let bits = number.parse::<f64>().map_err(|_| bad())? * size;
        if bits < 8.0 {
            return Err(Error::invalid("rate", format!("'{s}' is below 8bit, one byte per second")));
        }
        if bits >= u64::MAX as f64 {
            return Err(Error::invalid("rate", format!("'{s}' is too fast")));
        }
        // Truncated, as tc truncates: bytes per second then round down the same way.
        Ok(Rate(bits as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each rate with the bytes per second tc 6.1 sent for it (`tc qdisc add ... netem rate R`).
    #[test]
    fn parses_like_tc() {
        let cases = [
            ("100bit", 12),
            ("1mbps", 1_000_000),
            ("1.5kibit", 192),
            ("1kbps", 1000),
            ("1KBps", 1000),
            ("500kbit", 62_500),
            ("3.3mbit", 412_500),
            ("10mbit", 1_250_000),
            ("1gbit", 125_000_000),
            ("34.359738360gbit", 4_294_967_295),
            ("34.359738368gbit", 4_294_967_296),
            ("100gbit", 12_500_000_000),
            ("1tbit", 125_000_000_000),
        ];
        for (text, bytes) in cases {
            assert_eq!(text.parse::<Rate>().unwrap().bytes_per_sec(), bytes, "{text}");
        }
        assert_eq!("1Mibit".parse::<Rate>().unwrap(), Rate::from_bits_per_sec(1 << 20));
        assert_eq!("2GiBps".parse::<Rate>().unwrap(), Rate::from_bits_per_sec(16 << 30));
    }

    #[test]
    fn rejects() {
        for bad in ["", "10", "mbit", "10 mbit", "-1mbit", "1e3kbit", "10mb", "10mbits", "1.2.3mbit", ".mbit"] {
            let err = bad.parse::<Rate>().unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")) && err.contains("units: bit, kbit"), "{bad}: {err}");
        }
        for (bad, why) in [("7bit", "below 8bit"), ("0mbit", "below 8bit"), ("99999999999tbps", "too fast")] {
            let err = bad.parse::<Rate>().unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn displays() {
        for (bits, text) in [(10_000_000, "10mbit"), (1_500_000, "1500kbit"), (100, "100bit"), (1_000_000_000, "1gbit")]
        {
            let rate = Rate::from_bits_per_sec(bits);
            assert_eq!(rate.to_string(), text);
            assert_eq!(text.parse::<Rate>().unwrap(), rate);
        }
    }
}

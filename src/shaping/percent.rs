//! Percentages: netem's probabilities and correlations.

use crate::error::{Error, Result};

/// A percentage, 0 to 100: a probability (loss, duplication, ...) or a correlation.
///
/// Parsed from `1%`, `0.5%` or a bare number, which is a percentage too (`1` is one percent, as
/// tc reads it). The field is public so that `Percent(1.0)` can be written directly;
/// [`Qos::validate`](super::Qos::validate) rejects values outside 0 to 100.
#[derive(Debug, Clone, Copy, Default, PartialEq, PartialOrd, serde::Serialize, serde::Deserialize)]
pub struct Percent(pub f64);

impl Percent {
    /// 0%.
    pub const ZERO: Percent = Percent(0.0);

    /// Whether it is 0%.
    pub fn is_zero(self) -> bool {
        self.0 == 0.0
    }

    /// An error naming `what` unless the percentage is within 0 to 100.
    pub(crate) fn check(self, what: &str) -> Result<()> {
        if (0.0..=100.0).contains(&self.0) {
            Ok(())
        } else {
            Err(Error::invalid(what, format!("{self} is out of range (allowed: 0% to 100%)")))
        }
    }

    /// netem's encoding: the fraction of `u32::MAX`, rounded half to even as tc does.
    pub(crate) fn scaled(self) -> u32 {
        (self.0 / 100.0 * f64::from(u32::MAX)).round_ties_even() as u32
    }
}

impl std::fmt::Display for Percent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}%", self.0)
    }
}

impl std::str::FromStr for Percent {
    type Err = Error;

    fn from_str(s: &str) -> Result<Percent> {
        let bad = || Error::invalid("percentage", format!("'{s}' (use e.g. 1%, 0.5% or 100%)"));
        let number = s.strip_suffix('%').unwrap_or(s);
        if !number.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Err(bad());
        }
        let percent = Percent(number.parse().map_err(|_| bad())?);
        percent.check("percentage")?;
        Ok(percent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        for (text, want) in [("1%", 1.0), ("0.5%", 0.5), ("1", 1.0), (".5%", 0.5), ("100%", 100.0), ("0", 0.0)] {
            assert_eq!(text.parse::<Percent>().unwrap(), Percent(want), "{text}");
        }
    }

    #[test]
    fn rejects() {
        for bad in ["", "%", "-1%", "1 %", " 1%", "1%%", "NaN", "inf", "1e2", "one", "1.2.3%"] {
            let err = bad.parse::<Percent>().unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{bad}: {err}");
        }
        let err = "101%".parse::<Percent>().unwrap_err().to_string();
        assert!(err.contains("101% is out of range (allowed: 0% to 100%)"), "{err}");
    }

    /// The values tc 6.1 sent for these percentages (captured from its netlink messages).
    #[test]
    fn scales_like_tc() {
        let cases = [
            (0.1, 0x0041_8937),
            (0.5, 0x0147_ae14),
            (1.0, 0x028f_5c29),
            (2.0, 0x051e_b852),
            (10.0, 0x1999_999a),
            (20.0, 0x3333_3333),
            (25.0, 0x4000_0000),
            (30.0, 0x4ccc_cccc),
            (50.0, 0x8000_0000),
            (70.0, 0xb333_3332),
            (100.0, 0xffff_ffff),
        ];
        for (percent, want) in cases {
            assert_eq!(Percent(percent).scaled(), want, "{percent}%");
        }
    }
}

//! Durations as people write them in manifests and on the command line: `500ms`, `1.5s`, `2m`.

use std::time::Duration;

use crate::error::{Error, Result};

/// The units, largest first, with their length in nanoseconds.
const UNITS: [(&str, u64); 7] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

const SECOND: u128 = 1_000_000_000;

/// Parses a duration: a decimal number and a unit (`ns`, `us`, `ms`, `s`, `m`, `h` or `d`), such as
/// `500ms`, `1.5s` or `2m`. `0` needs no unit; negative numbers and spaces are rejected.
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || Error::invalid("duration", format!("'{s}' (use e.g. 500ms, 1.5s, 2m; units: ns, us, ms, s, m, h, d)"));
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit() && c != '.').ok_or_else(bad)?);
    let (_, size) = UNITS.iter().find(|(u, _)| *u == unit).ok_or_else(bad)?;
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(bad());
    }
    // In integers, so that every nanosecond is exact: the whole part, and the fraction (to 20
    // digits, far below a nanosecond of any unit) rounded to the nearest nanosecond.
    let too_long = || Error::invalid("duration", format!("'{s}' is too long"));
    let size = u128::from(*size);
    let whole: u128 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| too_long())? };
    let fraction = &fraction[..fraction.len().min(20)];
    let scale = 10u128.pow(fraction.len() as u32);
    let fraction: u128 = if fraction.is_empty() { 0 } else { fraction.parse().map_err(|_| bad())? };
    let nanos = whole.checked_mul(size).and_then(|n| n.checked_add((fraction * size + scale / 2) / scale));
    let nanos = nanos.and_then(|n| u64::try_from(n).ok()).filter(|&n| n < u64::MAX).ok_or_else(too_long)?;
    Ok(Duration::from_nanos(nanos))
}

/// Formats a duration for people: the largest unit it fills, with at most three decimals, such as
/// `2m`, `1.5s` or `250ms`. Hours and minutes are used only when whole (`90s`, not `1.5m`).
/// [`parse_duration`] reads the result back.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0".to_string();
    }
    let (unit, size) = UNITS
        .iter()
        .map(|&(unit, size)| (unit, u128::from(size)))
        .find(|&(_, size)| nanos >= size && (size <= SECOND || nanos % size == 0))
        .expect("a positive duration fills at least a nanosecond");
    let thousandths = (nanos * 1000 + size / 2) / size;
    let (whole, frac) = (thousandths / 1000, thousandths % 1000);
    if frac == 0 {
        format!("{whole}{unit}")
    } else {
        format!("{whole}.{}{unit}", format!("{frac:03}").trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let cases = [
            ("0", Duration::ZERO),
            ("0s", Duration::ZERO),
            ("250us", Duration::from_micros(250)),
            ("500ms", Duration::from_millis(500)),
            ("10s", Duration::from_secs(10)),
            ("1.5s", Duration::from_millis(1500)),
            ("1.1s", Duration::from_millis(1100)),
            (".5s", Duration::from_millis(500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
            ("7ns", Duration::from_nanos(7)),
            ("1.0000005s", Duration::from_nanos(1_000_000_500)),
            ("9007199254740993ns", Duration::from_nanos(9_007_199_254_740_993)),
            ("0.0000000004s", Duration::ZERO),
            ("1.0000000005s", Duration::from_nanos(1_000_000_001)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn rejects() {
        for bad in ["", "10", "-1s", "1.2.3s", ".s", "10 s", " 1s", "1S", "1sec", "10 parsecs", "1e3s", "99999999999h"]
        {
            let err = parse_duration(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
        let err = parse_duration("5w").unwrap_err().to_string();
        assert!(err.contains("ns, us, ms, s, m, h, d"), "{err}");
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(2 * 86_400));
    }

    #[test]
    fn formats() {
        let cases = [
            (Duration::ZERO, "0"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::from_micros(250), "250us"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_nanos(1_234_567_891), "1.235s"),
            (Duration::from_micros(1_999_600), "2s"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(7200), "2h"),
        ];
        for (d, want) in cases {
            assert_eq!(format_duration(d), want, "{d:?}");
        }
    }

    #[test]
    fn round_trips() {
        for text in ["0", "1ns", "250us", "1.5ms", "500ms", "1.5s", "1.25s", "90s", "2m", "1h"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }
}

//! netem's delay distribution tables, built the way iproute2 builds the `normal.dist`,
//! `pareto.dist` and `paretonormal.dist` files that tc sends.
//!
//! A table is 4096 samples of the inverse cumulative distribution at evenly spaced
//! probabilities, in units of 1/8192 of the jitter (`NETEM_DIST_SCALE`), clamped to `i16`. The
//! kernel picks an entry at random per packet and delays it by `delay + jitter * entry / 8192`.

use std::sync::OnceLock;

use super::Distribution;

/// One standard deviation (the jitter) in table units: `NETEM_DIST_SCALE`.
const SCALE: f64 = 8192.0;
/// The normal table is sampled at this many probabilities, and every 4th kept.
const FINE: usize = 16384;
/// Entries in a table.
const ENTRIES: usize = FINE / 4;

#[link(name = "m")]
extern "C" {
    /// libm's error function (Rust's own is not stable yet); the tables were made with it.
    fn erf(x: f64) -> f64;
}

/// The table for `d`, built once; empty for [`Distribution::Uniform`], which netem draws
/// without a table.
pub(crate) fn table(d: Distribution) -> &'static [i16] {
    static TABLES: [OnceLock<Vec<i16>>; 3] = [const { OnceLock::new() }; 3];
    let (cell, build): (_, fn() -> Vec<i16>) = match d {
        Distribution::Uniform => return &[],
        Distribution::Normal => (&TABLES[0], || normal().into_iter().map(clamp).collect()),
        Distribution::Pareto => (&TABLES[1], || pareto().into_iter().map(clamp).collect()),
        Distribution::ParetoNormal => (&TABLES[2], || {
            // A quarter normal, three quarters Pareto, each entry rounded toward zero.
            normal().into_iter().zip(pareto()).map(|(n, p)| clamp((n + 3 * p) / 4)).collect()
        }),
    };
    cell.get_or_init(build)
}

fn clamp(value: i32) -> i16 {
    value.clamp(i16::MIN.into(), i16::MAX.into()) as i16
}

/// The standard normal distribution, not yet clamped: x from -10 to 10 in steps of 1/20000,
/// each stored at the probability (in 1/16384) it rounds to, the last x winning; then every 4th
/// probability, in table units.
fn normal() -> Vec<i32> {
    let mut inverse = vec![0.0f64; FINE + 1];
    let mut x = -10.0f64;
    while x < 10.05 {
        // SAFETY: erf is a pure function of a double.
        let cdf = 0.5 + 0.5 * unsafe { erf(x / std::f64::consts::SQRT_2) };
        inverse[(FINE as f64 * cdf).round_ties_even() as usize] = x;
        x += 0.00005;
    }
    inverse.iter().step_by(4).take(ENTRIES).map(|x| (x * SCALE).round_ties_even() as i32).collect()
}

/// The Pareto distribution with shape 3, shifted to mean 0 and scaled by 4/3, capped at
/// `i16::MAX`: for probability q from 1 down to 1/4096, `(q^(-1/3) - 1.5) * 4/3`.
fn pareto() -> Vec<i32> {
    (0..ENTRIES)
        .map(|i| {
            let q = (65536 - 16 * i) as f64 / 65536.0;
            let value = (1.0 / q.powf(1.0 / 3.0) - 1.5) * ((4.0 / 3.0) * SCALE);
            value.min(32767.0).round_ties_even() as i32
        })
        .collect()
}

/// The table tc sends for `d`, read from iproute2's `.dist` file if it is installed (in Debian's
/// library directory or in iproute2's default one).
#[cfg(test)]
pub(super) fn installed_table(d: Distribution) -> Option<Vec<i16>> {
    let dirs = ["/usr/lib/x86_64-linux-gnu/tc", "/usr/lib/tc"];
    let text = dirs.iter().find_map(|dir| std::fs::read_to_string(format!("{dir}/{d}.dist")).ok())?;
    Some(tests::numbers(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows 1, 257 and 512 (of 512, eight entries each) of Debian's iproute2 6.1 tables, as text.
    const KNOWN: [(Distribution, [&str; 3]); 3] = [
        (
            Distribution::Normal,
            [
                "-32768 -28307 -26871 -25967 -25298 -24765 -24320 -23937",
                "0 5 11 16 20 25 30 36",
                "23679 24027 24424 24888 25450 26164 27159 28858",
            ],
        ),
        (
            Distribution::Pareto,
            [
                "-5461 -5460 -5460 -5459 -5458 -5457 -5456 -5455",
                "-2622 -2620 -2618 -2616 -2613 -2611 -2609 -2607",
                "32767 32767 32767 32767 32767 32767 32767 32767",
            ],
        ),
        (
            Distribution::ParetoNormal,
            [
                "-12305 -11171 -10812 -10586 -10418 -10284 -10172 -10075",
                "-1966 -1963 -1960 -1958 -1954 -1952 -1949 -1946",
                "30495 30582 30681 30797 30937 31116 31365 31789",
            ],
        ),
    ];

    /// The numbers of a `.dist` file (comment lines start with `#`).
    pub(super) fn numbers(text: &str) -> Vec<i16> {
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .flat_map(str::split_whitespace)
            .map(|n| n.parse().unwrap())
            .collect()
    }

    #[test]
    fn matches_known_entries() {
        for (d, rows) in KNOWN {
            let table = table(d);
            assert_eq!(table.len(), 4096, "{d}");
            for (row, text) in [0, 256, 511].into_iter().zip(rows) {
                assert_eq!(&table[row * 8..row * 8 + 8], numbers(text), "{d}, row {}", row + 1);
            }
        }
    }

    /// The whole tables equal the ones tc ships, where iproute2 is installed.
    #[test]
    fn matches_tc_files() {
        for (d, _) in KNOWN {
            let Some(installed) = installed_table(d) else {
                eprintln!("no {d}.dist installed: compared the known entries only");
                continue;
            };
            assert_eq!(table(d), installed, "{d}");
        }
    }

    #[test]
    fn uniform_has_no_table() {
        assert!(table(Distribution::Uniform).is_empty());
    }
}

//! What a link does to its packets: delay, loss, duplication, corruption, reordering and rate,
//! as netem models them.

use std::time::Duration;

use super::{Percent, Rate};
use crate::error::{Error, Result};
use crate::units::format_duration;

/// netem's own queue limit, in packets, when none is given.
const NETEM_LIMIT: u32 = 1000;
/// The largest queue limit [`Qos::queue_limit`] computes, in packets: about 1.5 GB of full-size
/// frames, if a test ever fills it.
const MAX_COMPUTED_LIMIT: u32 = 1_000_000;
/// The rate [`Qos::queue_limit`] assumes when the link has none: a veth forwards about this fast.
const UNSHAPED_RATE: Rate = Rate::from_bits_per_sec(10_000_000_000);
/// The packet size [`Qos::queue_limit`] assumes, in bytes: a full Ethernet payload.
const PACKET_BYTES: u128 = 1500;
/// The largest jitter, in nanoseconds: the kernel caps it there (`INT_MAX`, for its tables).
const MAX_JITTER_NS: u128 = i32::MAX as u128;

/// The shape of the random part of the delay (netem's delay distribution).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Distribution {
    /// Evenly spread over delay ± jitter (netem's own, no table).
    #[default]
    Uniform,
    /// Normal, with the jitter as standard deviation.
    Normal,
    /// Pareto: a long tail of large delays.
    Pareto,
    /// A quarter normal, three quarters Pareto (tc's `paretonormal`).
    ParetoNormal,
}

impl Distribution {
    const NAMES: [(&str, Distribution); 4] = [
        ("uniform", Distribution::Uniform),
        ("normal", Distribution::Normal),
        ("pareto", Distribution::Pareto),
        ("paretonormal", Distribution::ParetoNormal),
    ];
}

impl std::fmt::Display for Distribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, _) = Distribution::NAMES.iter().find(|(_, d)| d == self).expect("every distribution has a name");
        f.write_str(name)
    }
}

impl std::str::FromStr for Distribution {
    type Err = Error;

    /// Reads tc's names: `uniform`, `normal`, `pareto`, `paretonormal`.
    fn from_str(s: &str) -> Result<Distribution> {
        let (_, d) = Distribution::NAMES.iter().find(|(name, _)| *name == s).ok_or_else(|| {
            Error::invalid("distribution", format!("'{s}' (allowed: uniform, normal, pareto, paretonormal)"))
        })?;
        Ok(*d)
    }
}

/// A random event with a probability and a correlation to the previous packet's draw.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Chance {
    /// How often it happens.
    pub percent: Percent,
    /// How much each draw depends on the previous one (0%: independent).
    pub correlation: Percent,
}

/// Reordering: some packets skip the delay and so overtake the ones before them.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reorder {
    /// How often a packet is sent at once instead of delayed.
    pub percent: Percent,
    /// Correlation of successive draws.
    pub correlation: Percent,
    /// Only every `gap`-th packet may skip the delay; 0 counts as 1 (any packet may).
    pub gap: u32,
}

/// Packet loss.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Loss {
    /// No loss.
    #[default]
    None,
    /// Each packet is lost with a probability, correlated with the previous draw.
    Random {
        /// How many packets are lost.
        percent: Percent,
        /// Correlation of successive draws.
        correlation: Percent,
    },
    /// The Gilbert-Elliott model (tc's `loss gemodel`): a good and a bad state, each with its own
    /// loss probability; losses come in bursts while the link is in the bad state. tc's defaults
    /// for the parameters after `p` are `r` = 100%, `1-h` = 100% and `1-k` = 0%.
    GilbertElliott {
        /// Probability of moving from the good state to the bad one.
        p: Percent,
        /// Probability of moving from the bad state back to the good one.
        r: Percent,
        /// Loss probability in the bad state (`1-h`).
        one_minus_h: Percent,
        /// Loss probability in the good state (`1-k`).
        one_minus_k: Percent,
    },
}

/// What a link does to its packets: netem's delay, jitter, loss, duplication, corruption,
/// reordering and rate limit. The default does nothing ([`Qos::is_clear`]).
///
/// Plain data: set the fields, then [`Qos::validate`] before use.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Qos {
    /// Added to every packet's delivery time.
    pub delay: Duration,
    /// Random variation of the delay, up to ±jitter (its standard deviation for the normal
    /// distributions). Needs a delay; at most 2.147s.
    pub jitter: Duration,
    /// Correlation of successive jitter draws. Needs a jitter.
    pub delay_correlation: Percent,
    /// The shape of the jitter. Anything but uniform needs a jitter.
    pub distribution: Distribution,
    /// Packet loss.
    pub loss: Loss,
    /// Packets sent twice.
    pub duplicate: Chance,
    /// Packets with a flipped bit.
    pub corrupt: Chance,
    /// Packets sent without the delay. Needs a delay.
    pub reorder: Reorder,
    /// The link's rate limit; `None` for no limit.
    pub rate: Option<Rate>,
    /// netem's queue limit, in packets; `None` to compute it ([`Qos::queue_limit`]).
    pub limit: Option<u32>,
}

impl Qos {
    /// The keys [`Qos::from_settings`] takes: the manifest's `[[qos]]` fields.
    pub const SETTINGS: [&'static str; 15] = [
        "delay",
        "jitter",
        "correlation",
        "distribution",
        "loss",
        "loss_correlation",
        "duplicate",
        "duplicate_correlation",
        "corrupt",
        "corrupt_correlation",
        "reorder",
        "reorder_correlation",
        "gap",
        "rate",
        "limit",
    ];

    /// A validated `Qos` from `key = value` text pairs, keys as in [`Qos::SETTINGS`] (`delay =
    /// "50ms"`, `loss = "1%"`, `rate = "10mbit"`); the error names the key.
    pub fn from_settings<'a>(settings: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Qos> {
        let mut qos = Qos::default();
        for (key, value) in settings {
            if !Qos::SETTINGS.contains(&key) {
                return Err(Error::invalid(
                    "qos",
                    format!("unknown setting '{key}'; known: {}", Qos::SETTINGS.join(", ")),
                ));
            }
            qos.set(key, value).map_err(|e| Error::invalid(format!("qos {key}"), e.to_string()))?;
        }
        qos.validate()?;
        Ok(qos)
    }

    /// Sets the field `key` (one of [`Qos::SETTINGS`]) from text, leaving the combinations to
    /// [`Qos::validate`]. A loss correlation without a loss means 0% loss.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let percent = || value.parse::<Percent>();
        let count = || {
            value.parse::<u32>().map_err(|_| Error::invalid(key, format!("'{value}' is not a whole number of packets")))
        };
        let (loss, loss_correlation) = match self.loss {
            Loss::Random { percent, correlation } => (percent, correlation),
            _ => (Percent::ZERO, Percent::ZERO),
        };
        match key {
            "delay" => self.delay = crate::units::parse_duration(value)?,
            "jitter" => self.jitter = crate::units::parse_duration(value)?,
            "correlation" => self.delay_correlation = percent()?,
            "distribution" => self.distribution = value.parse()?,
            "loss" => self.loss = Loss::Random { percent: percent()?, correlation: loss_correlation },
            "loss_correlation" => self.loss = Loss::Random { percent: loss, correlation: percent()? },
            "duplicate" => self.duplicate.percent = percent()?,
            "duplicate_correlation" => self.duplicate.correlation = percent()?,
            "corrupt" => self.corrupt.percent = percent()?,
            "corrupt_correlation" => self.corrupt.correlation = percent()?,
            "reorder" => self.reorder.percent = percent()?,
            "reorder_correlation" => self.reorder.correlation = percent()?,
            "gap" => self.reorder.gap = count()?,
            "rate" => self.rate = Some(value.parse()?),
            "limit" => self.limit = Some(count()?),
            other => {
                return Err(Error::invalid(
                    "qos",
                    format!("unknown setting '{other}'; known: {}", Qos::SETTINGS.join(", ")),
                ))
            }
        }
        Ok(())
    }

    /// Whether it leaves packets alone: every field is at its default.
    pub fn is_clear(&self) -> bool {
        *self == Qos::default()
    }

    /// Checks every field and their combinations; the error names the field and what is allowed.
    pub fn validate(&self) -> Result<()> {
        let percents = [
            ("delay correlation", self.delay_correlation),
            ("duplicate", self.duplicate.percent),
            ("duplicate correlation", self.duplicate.correlation),
            ("corrupt", self.corrupt.percent),
            ("corrupt correlation", self.corrupt.correlation),
            ("reorder", self.reorder.percent),
            ("reorder correlation", self.reorder.correlation),
        ];
        let loss = match self.loss {
            Loss::None => vec![],
            Loss::Random { percent, correlation } => vec![("loss", percent), ("loss correlation", correlation)],
            Loss::GilbertElliott { p, r, one_minus_h, one_minus_k } => {
                vec![("loss p", p), ("loss r", r), ("loss 1-h", one_minus_h), ("loss 1-k", one_minus_k)]
            }
        };
        for (what, percent) in percents.into_iter().chain(loss) {
            percent.check(what)?;
        }
        let jitter = format_duration(self.jitter);
        let rules = [
            (
                i64::try_from(self.delay.as_nanos()).is_err(),
                "delay",
                format!("{} is too long", format_duration(self.delay)),
            ),
            (
                self.jitter.as_nanos() > MAX_JITTER_NS,
                "jitter",
                format!("{jitter} is too large (at most 2.147s: the kernel caps it there)"),
            ),
            (
                self.delay.is_zero() && !self.jitter.is_zero(),
                "jitter",
                format!("{jitter} needs a delay: netem varies the delay by up to the jitter"),
            ),
            (
                self.jitter.is_zero() && !self.delay_correlation.is_zero(),
                "delay correlation",
                "needs a jitter: it correlates the random part of the delay".into(),
            ),
            (
                self.jitter.is_zero() && self.distribution != Distribution::Uniform,
                "distribution",
                format!("{} needs a jitter: the distribution shapes the random part of the delay", self.distribution),
            ),
            (
                self.reorder.percent.is_zero() && self.reorder.gap > 0,
                "reorder gap",
                format!("gap {} needs a reorder percentage above 0%", self.reorder.gap),
            ),
            (
                !self.reorder.percent.is_zero() && self.delay.is_zero(),
                "reorder",
                "reorder needs a delay: netem reorders by sending some packets without the delay".into(),
            ),
            (
                self.rate.is_some_and(|r| r.bytes_per_sec() == 0),
                "rate",
                "must be at least 8bit (one byte per second); leave it unset for no limit".into(),
            ),
            (
                self.limit == Some(0),
                "limit",
                "must be at least 1 packet; leave it unset to compute it from rate and delay".into(),
            ),
        ];
        match rules.into_iter().find(|(broken, ..)| *broken) {
            Some((_, what, message)) => Err(Error::invalid(what, message)),
            None => Ok(()),
        }
    }

    /// netem's queue limit in packets: [`Qos::limit`] if set, otherwise enough for the traffic
    /// the delay holds back.
    ///
    /// netem keeps every delayed packet in its queue and drops arrivals beyond the limit, which
    /// defaults to 1000 packets: at 100ms of delay that caps a link at about 120 Mbit/s. So the
    /// computed limit is twice the packets in flight, `2 × rate × (delay + jitter) / 1500 bytes`
    /// (the rate taken as 10 Gbit/s when unset, about what a veth forwards), rounded up, and kept
    /// within 1000 (netem's default, also used without delay) and 1 000 000 packets.
    pub fn queue_limit(&self) -> u32 {
        if let Some(limit) = self.limit {
            return limit;
        }
        let held = self.delay.saturating_add(self.jitter).as_nanos();
        if held == 0 {
            return NETEM_LIMIT;
        }
        let bytes_per_sec = u128::from(self.rate.unwrap_or(UNSHAPED_RATE).bytes_per_sec());
        let packets = (2 * bytes_per_sec).saturating_mul(held).div_ceil(PACKET_BYTES * 1_000_000_000);
        u32::try_from(packets).unwrap_or(u32::MAX).clamp(NETEM_LIMIT, MAX_COMPUTED_LIMIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn settings_from_text() {
        let qos = Qos::from_settings([
            ("delay", "50ms"),
            ("loss", "1%"),
            ("loss_correlation", "25%"),
            ("rate", "8mbit"),
            ("limit", "100"),
        ])
        .unwrap();
        assert_eq!(qos.delay, ms(50));
        assert_eq!(qos.loss, Loss::Random { percent: "1%".parse().unwrap(), correlation: "25%".parse().unwrap() });
        assert_eq!((qos.rate, qos.limit), (Some("8mbit".parse().unwrap()), Some(100)));
        let err = |pairs: &[(&str, &str)]| Qos::from_settings(pairs.iter().copied()).unwrap_err().to_string();
        assert!(err(&[("bandwidth", "1mbit")]).contains("unknown setting 'bandwidth'; known: delay, jitter"));
        assert!(err(&[("loss", "150%")]).contains("invalid qos loss: invalid percentage: 150% is out of range"));
        assert!(err(&[("gap", "x")]).contains("'x' is not a whole number of packets"));
        assert!(err(&[("jitter", "5ms")]).contains("needs a delay"));
    }

    fn random(percent: f64) -> Loss {
        Loss::Random { percent: Percent(percent), correlation: Percent::ZERO }
    }

    #[test]
    fn accepts() {
        let good = [
            Qos::default(),
            Qos {
                delay: ms(100),
                jitter: ms(10),
                delay_correlation: Percent(25.0),
                distribution: Distribution::Normal,
                ..Qos::default()
            },
            Qos {
                delay: ms(1),
                reorder: Reorder { percent: Percent(10.0), correlation: Percent(50.0), gap: 5 },
                ..Qos::default()
            },
            Qos { loss: random(100.0), rate: Some(Rate::from_bits_per_sec(8)), limit: Some(1), ..Qos::default() },
            Qos { delay: ms(10), jitter: Duration::from_nanos(i32::MAX as u64), ..Qos::default() },
        ];
        for qos in good {
            qos.validate().unwrap_or_else(|e| panic!("{qos:?}: {e}"));
        }
    }

    #[test]
    fn rejects() {
        let ge = |p: f64, h: f64| Loss::GilbertElliott {
            p: Percent(p),
            r: Percent(100.0),
            one_minus_h: Percent(h),
            one_minus_k: Percent::ZERO,
        };
        let cases = [
            (Qos { loss: random(101.0), ..Qos::default() }, "invalid loss: 101% is out of range (allowed: 0% to 100%)"),
            (Qos { loss: random(-1.0), ..Qos::default() }, "invalid loss: -1% is out of range"),
            (Qos { loss: random(f64::NAN), ..Qos::default() }, "invalid loss: NaN% is out of range"),
            (
                Qos { loss: Loss::Random { percent: Percent(1.0), correlation: Percent(200.0) }, ..Qos::default() },
                "invalid loss correlation: 200%",
            ),
            (Qos { loss: ge(-5.0, 100.0), ..Qos::default() }, "invalid loss p: -5%"),
            (Qos { loss: ge(1.0, 100.5), ..Qos::default() }, "invalid loss 1-h: 100.5%"),
            (
                Qos { duplicate: Chance { percent: Percent(150.0), correlation: Percent::ZERO }, ..Qos::default() },
                "invalid duplicate: 150%",
            ),
            (
                Qos {
                    corrupt: Chance { percent: Percent(1.0), correlation: Percent(f64::INFINITY) },
                    ..Qos::default()
                },
                "invalid corrupt correlation: inf%",
            ),
            (
                Qos {
                    delay: ms(5),
                    reorder: Reorder { correlation: Percent(-1.0), ..Reorder::default() },
                    ..Qos::default()
                },
                "invalid reorder correlation: -1%",
            ),
            (
                Qos { reorder: Reorder { percent: Percent(25.0), ..Reorder::default() }, ..Qos::default() },
                "invalid reorder: reorder needs a delay: netem reorders by sending some packets without the delay",
            ),
            (
                Qos { delay: ms(5), reorder: Reorder { gap: 5, ..Reorder::default() }, ..Qos::default() },
                "invalid reorder gap: gap 5 needs a reorder percentage above 0%",
            ),
            (Qos { jitter: ms(10), ..Qos::default() }, "invalid jitter: 10ms needs a delay"),
            (
                Qos { delay: ms(10), jitter: ms(2148), ..Qos::default() },
                "invalid jitter: 2.148s is too large (at most 2.147s",
            ),
            (Qos { delay: Duration::MAX, ..Qos::default() }, "invalid delay: "),
            (
                Qos { delay: ms(10), delay_correlation: Percent(25.0), ..Qos::default() },
                "invalid delay correlation: needs a jitter",
            ),
            (
                Qos { delay: ms(10), distribution: Distribution::Pareto, ..Qos::default() },
                "invalid distribution: pareto needs a jitter",
            ),
            (Qos { rate: Some(Rate::from_bits_per_sec(7)), ..Qos::default() }, "invalid rate: must be at least 8bit"),
            (Qos { limit: Some(0), ..Qos::default() }, "invalid limit: must be at least 1 packet"),
        ];
        for (qos, want) in cases {
            let err = qos.validate().expect_err(want).to_string();
            assert!(err.contains(want), "{qos:?}\n got: {err}\nwant: {want}");
        }
    }

    #[test]
    fn clear_is_default() {
        assert!(Qos::default().is_clear());
        assert!(!Qos { delay: ms(1), ..Qos::default() }.is_clear());
        assert!(!Qos { limit: Some(1000), ..Qos::default() }.is_clear());
    }

    #[test]
    fn queue_limit() {
        let mbit = |n: u64| Some(Rate::from_bits_per_sec(n * 1_000_000));
        let cases = [
            (Qos::default(), 1000),
            (Qos { limit: Some(7), delay: ms(500), ..Qos::default() }, 7),
            (Qos { rate: mbit(10), ..Qos::default() }, 1000),
            // 10 Mbit/s for 100ms is 84 packets in flight: netem's default is plenty.
            (Qos { rate: mbit(10), delay: ms(100), ..Qos::default() }, 1000),
            // 2 × 125 MB/s × 0.1s / 1500 B = 16 667.
            (Qos { rate: mbit(1000), delay: ms(100), ..Qos::default() }, 16_667),
            // Jitter adds to the time packets are held: 2 × 125 MB/s × 0.12s / 1500 B = 20 000.
            (Qos { rate: mbit(1000), delay: ms(100), jitter: ms(20), ..Qos::default() }, 20_000),
            // No rate: 10 Gbit/s assumed, 2 × 1.25 GB/s × 0.01s / 1500 B = 16 667.
            (Qos { delay: ms(10), ..Qos::default() }, 16_667),
            (Qos { delay: ms(2000), ..Qos::default() }, 1_000_000),
            (Qos { delay: Duration::from_secs(100 * 365 * 86_400), ..Qos::default() }, 1_000_000),
        ];
        for (qos, want) in cases {
            assert_eq!(qos.queue_limit(), want, "{qos:?}");
        }
    }

    #[test]
    fn distribution_names() {
        for name in ["uniform", "normal", "pareto", "paretonormal"] {
            assert_eq!(name.parse::<Distribution>().unwrap().to_string(), name);
        }
        let err = "gaussian".parse::<Distribution>().unwrap_err().to_string();
        assert!(err.contains("'gaussian' (allowed: uniform, normal, pareto, paretonormal)"), "{err}");
    }
}

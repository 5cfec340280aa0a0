//! netem's options: the bytes of `TCA_OPTIONS` for a [`Qos`].
//!
//! Unlike other qdiscs, netem's `TCA_OPTIONS` is not a list of attributes: it starts with
//! `struct tc_netem_qopt` (six `u32`: latency, limit, loss, gap, duplicate, jitter; times in
//! psched ticks, probabilities as fractions of `u32::MAX`) and the attributes follow it.

use super::nla::{self, words};
use super::{dist, psched, Distribution, Loss, Qos, Rate};

const TCA_NETEM_CORR: u16 = 1;
const TCA_NETEM_DELAY_DIST: u16 = 2;
const TCA_NETEM_REORDER: u16 = 3;
const TCA_NETEM_CORRUPT: u16 = 4;
const TCA_NETEM_LOSS: u16 = 5;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;
/// The Gilbert-Elliott model inside `TCA_NETEM_LOSS`.
const NETEM_LOSS_GE: u16 = 2;

/// The `TCA_OPTIONS` payload that sets netem to `q`, which must have passed
/// [`Qos::validate`]; `ticks_per_us` comes from [`psched_ticks_per_us`](super::psched::psched_ticks_per_us).
///
/// It describes the whole state, so that a change of an existing netem leaves nothing behind:
/// the kernel keeps the correlations, reordering, corruption and rate of the previous options
/// when their attributes are missing, so those are always sent, zero when unused. Delays go both
/// in ticks in the struct (for kernels before 4.15) and in nanoseconds in `TCA_NETEM_LATENCY64`
/// and `TCA_NETEM_JITTER64`, which newer kernels prefer. Attributes are in tc's order.
///
/// One thing a change cannot undo: the kernel keeps the last delay distribution table, so going
/// back to [`Distribution::Uniform`] with a jitter needs the qdisc
/// deleted and added again.
pub(crate) fn netem_options(q: &Qos, ticks_per_us: f64) -> Vec<u8> {
    let ticks = |d: std::time::Duration| psched::ticks(d.as_micros(), ticks_per_us);
    let nanos = |d: std::time::Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX).to_le_bytes();
    let (loss, loss_correlation) = match q.loss {
        Loss::Random { percent, correlation } => (percent.scaled(), correlation.scaled()),
        Loss::None | Loss::GilbertElliott { .. } => (0, 0),
    };
    // The kernel reorders only with a gap of 1 or more; tc makes 0 a 1, and so does this.
    let gap = if q.reorder.percent.is_zero() { 0 } else { q.reorder.gap.max(1) };
    let mut out = words(&[ticks(q.delay), q.queue_limit(), loss, gap, q.duplicate.percent.scaled(), ticks(q.jitter)]);
    if !q.delay.is_zero() {
        nla::put(&mut out, TCA_NETEM_LATENCY64, &nanos(q.delay));
        nla::put(&mut out, TCA_NETEM_JITTER64, &nanos(q.jitter));
    }
    let correlations = [q.delay_correlation.scaled(), loss_correlation, q.duplicate.correlation.scaled()];
    nla::put(&mut out, TCA_NETEM_CORR, &words(&correlations));
    nla::put(&mut out, TCA_NETEM_REORDER, &words(&[q.reorder.percent.scaled(), q.reorder.correlation.scaled()]));
    nla::put(&mut out, TCA_NETEM_CORRUPT, &words(&[q.corrupt.percent.scaled(), q.corrupt.correlation.scaled()]));
    if let Loss::GilbertElliott { p, r, one_minus_h, one_minus_k } = q.loss {
        // The kernel takes h, the chance of *no* loss in the bad state.
        let model = words(&[p.scaled(), r.scaled(), u32::MAX - one_minus_h.scaled(), one_minus_k.scaled()]);
        nla::nest(&mut out, TCA_NETEM_LOSS | nla::NESTED, |loss| nla::put(loss, NETEM_LOSS_GE, &model));
    }
    let rate = q.rate.map_or(0, Rate::bytes_per_sec);
    if rate > u64::from(u32::MAX) {
        nla::put(&mut out, TCA_NETEM_RATE64, &rate.to_le_bytes());
    }
    // struct tc_netem_rate: rate, packet overhead, cell size, cell overhead.
    nla::put(&mut out, TCA_NETEM_RATE, &words(&[psched::rate32(rate), 0, 0, 0]));
    if !q.jitter.is_zero() && q.distribution != Distribution::Uniform {
        let table: Vec<u8> = dist::table(q.distribution).iter().flat_map(|v| v.to_le_bytes()).collect();
        nla::put(&mut out, TCA_NETEM_DELAY_DIST, &table);
    }
    out
}

/// Byte for byte what tc 6.1 (iproute2-6.1.0) sent in `TCA_OPTIONS`, captured with
/// `strace -e trace=sendmsg -e write=all tc qdisc add dev a root netem ...` on a veth (the kernel
/// then refused netem, which it lacks, but tc had sent the message), with the psched clock of
/// `TEST_PSCHED`.
///
/// Where the qos has a delay, the 64-bit delay attributes are inserted after the struct, where
/// tc 6.9 and later put them (6.1 sends only the ticks): `0c000a00` and `0c000b00`, each followed
/// by nanoseconds as a little-endian `i64`. Commands that would leave an attribute out spell out
/// zeros (`corrupt 0% 0% reorder 0% 0% rate 0bit`) so that tc sends the whole state too.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::shaping::nla::unhex;
    use crate::shaping::psched::TEST_PSCHED;
    use crate::shaping::{Chance, Percent, Reorder};

    const ZEROS: &str = "corrupt 0% 0% reorder 0% 0% rate 0bit";

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn chance(percent: f64, correlation: f64) -> Chance {
        Chance { percent: Percent(percent), correlation: Percent(correlation) }
    }

    /// tc's bytes (`captured`) with `delay64` (the 64-bit delay attributes, as hex) after the
    /// 24-byte struct.
    fn expected(captured: &str, delay64: &str) -> Vec<u8> {
        let mut bytes = unhex(captured);
        bytes.splice(24..24, unhex(delay64));
        bytes
    }

    fn check(qos: Qos, command: &str, captured: &str, delay64: &str) {
        qos.validate().unwrap();
        assert_eq!(
            hex(&netem_options(&qos, TEST_PSCHED.1)),
            hex(&expected(captured, delay64)),
            "tc qdisc add dev a root netem {command}"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        use std::fmt::Write as _;
        bytes.iter().fold(String::new(), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
    }

    #[test]
    fn delay() {
        check(
            Qos { delay: ms(100), limit: Some(1000), ..Qos::default() },
            &format!("delay 100ms limit 1000 {ZEROS}"),
            "84d71700 e8030000 00000000 00000000 00000000 00000000
             10000100 00000000 00000000 00000000  0c000300 00000000 00000000  0c000400 00000000 00000000
             14000600 00000000 00000000 00000000 00000000",
            "0c000a00 00e1f50500000000  0c000b00 0000000000000000",
        );
    }

    #[test]
    fn loss_random() {
        check(
            Qos { loss: Loss::Random { percent: Percent(1.0), correlation: Percent(30.0) }, ..Qos::default() },
            &format!("loss random 1% 30% {ZEROS}"),
            "00000000 e8030000 295c8f02 00000000 00000000 00000000
             10000100 00000000 cccccc4c 00000000  0c000300 00000000 00000000  0c000400 00000000 00000000
             14000600 00000000 00000000 00000000 00000000",
            "",
        );
    }

    #[test]
    fn loss_gilbert_elliott() {
        let loss = Loss::GilbertElliott {
            p: Percent(1.0),
            r: Percent(10.0),
            one_minus_h: Percent(70.0),
            one_minus_k: Percent(0.1),
        };
        check(
            Qos { loss, ..Qos::default() },
            &format!("loss gemodel 1% 10% 70% 0.1% {ZEROS}"),
            "00000000 e8030000 00000000 00000000 00000000 00000000
             10000100 00000000 00000000 00000000  0c000300 00000000 00000000  0c000400 00000000 00000000
             18000580 14000200 295c8f02 9a999919 cdcccc4c 37894100
             14000600 00000000 00000000 00000000 00000000",
            "",
        );
    }

    #[test]
    fn duplicate() {
        // Alone, `duplicate 2% 20%` makes tc 6.1 drop the correlation: it sends no
        // TCA_NETEM_CORR unless another correlation is given (here corrupt's).
        check(
            Qos { duplicate: chance(2.0, 20.0), ..Qos::default() },
            &format!("duplicate 2% 20% {ZEROS}"),
            "00000000 e8030000 00000000 00000000 52b81e05 00000000
             10000100 00000000 00000000 33333333  0c000300 00000000 00000000  0c000400 00000000 00000000
             14000600 00000000 00000000 00000000 00000000",
            "",
        );
    }

    #[test]
    fn corrupt() {
        check(
            Qos { corrupt: chance(0.5, 10.0), ..Qos::default() },
            "corrupt 0.5% 10% reorder 0% 0% rate 0bit",
            "00000000 e8030000 00000000 00000000 00000000 00000000
             10000100 00000000 00000000 00000000  0c000300 00000000 00000000  0c000400 14ae4701 9a999919
             14000600 00000000 00000000 00000000 00000000",
            "",
        );
    }

    #[test]
    fn reorder_with_gap() {
        check(
            Qos {
                delay: ms(10),
                reorder: Reorder { percent: Percent(25.0), correlation: Percent(50.0), gap: 5 },
                limit: Some(1000),
                ..Qos::default()
            },
            "delay 10ms reorder 25% 50% gap 5 corrupt 0% 0% rate 0bit limit 1000",
            "5a620200 e8030000 00000000 05000000 00000000 00000000
             10000100 00000000 00000000 00000000  0c000300 00000040 00000080  0c000400 00000000 00000000
             14000600 00000000 00000000 00000000 00000000",
            "0c000a00 8096980000000000  0c000b00 0000000000000000",
        );
    }

    #[test]
    fn rate() {
        check(
            Qos { rate: Some("10mbit".parse().unwrap()), ..Qos::default() },
            "rate 10mbit corrupt 0% 0% reorder 0% 0%",
            "00000000 e8030000 00000000 00000000 00000000 00000000
             10000100 00000000 00000000 00000000  0c000300 00000000 00000000  0c000400 00000000 00000000
             14000600 d0121300 00000000 00000000 00000000",
            "",
        );
        // 12.5 GB/s does not fit the struct: it goes in TCA_NETEM_RATE64, the struct says u32::MAX.
        check(
            Qos { rate: Some("100gbit".parse().unwrap()), ..Qos::default() },
            "rate 100gbit corrupt 0% 0% reorder 0% 0%",
            "00000000 e8030000 00000000 00000000 00000000 00000000
             10000100 00000000 00000000 00000000  0c000300 00000000 00000000  0c000400 00000000 00000000
             0c000800 00dd0ee902000000
             14000600 ffffffff 00000000 00000000 00000000",
            "",
        );
    }

    #[test]
    fn limit() {
        check(
            Qos { limit: Some(3000), ..Qos::default() },
            &format!("limit 3000 {ZEROS}"),
            "00000000 b80b0000 00000000 00000000 00000000 00000000
             10000100 00000000 00000000 00000000  0c000300 00000000 00000000  0c000400 00000000 00000000
             14000600 00000000 00000000 00000000 00000000",
            "",
        );
    }

    /// The command that sends every attribute without zeros spelled out.
    #[test]
    fn everything() {
        let qos = Qos {
            delay: ms(100),
            jitter: ms(10),
            delay_correlation: Percent(25.0),
            loss: Loss::Random { percent: Percent(1.0), correlation: Percent(30.0) },
            duplicate: chance(2.0, 0.0),
            corrupt: chance(0.5, 0.0),
            reorder: Reorder { percent: Percent(10.0), correlation: Percent(50.0), gap: 5 },
            rate: Some(Rate::from_bits_per_sec(10_000_000)),
            limit: Some(3000),
            ..Qos::default()
        };
        check(
            qos,
            "delay 100ms 10ms 25% loss 1% 30% duplicate 2% corrupt 0.5% reorder 10% 50% gap 5 rate 10mbit limit 3000",
            "84d71700 b80b0000 295c8f02 05000000 52b81e05 5a620200
             10000100 00000040 cccccc4c 00000000  0c000300 9a999919 00000080  0c000400 14ae4701 00000000
             14000600 d0121300 00000000 00000000 00000000",
            "0c000a00 00e1f50500000000  0c000b00 8096980000000000",
        );
    }

    /// A distribution table goes last, 4096 `i16`s; tc reads it from its `.dist` file, which
    /// [`dist::table`] reproduces (see its tests), so where the file is installed the whole
    /// message is compared, otherwise everything up to the table.
    fn check_with_table(qos: Qos, command: &str, captured: &str, delay64: &str) {
        qos.validate().unwrap();
        let ours = netem_options(&qos, TEST_PSCHED.1);
        let mut want = expected(captured, delay64);
        want.extend(unhex("04200200"));
        let command = format!("tc qdisc add dev a root netem {command}");
        if let Some(table) = dist::installed_table(qos.distribution) {
            want.extend(table.iter().flat_map(|v| v.to_le_bytes()));
            assert_eq!(hex(&ours), hex(&want), "{command}");
        } else {
            eprintln!("no {}.dist installed: compared the options up to the table", qos.distribution);
            assert_eq!(hex(&ours[..want.len()]), hex(&want), "{command}");
            assert_eq!(ours.len(), want.len() + 8192, "{command}");
        }
    }

    #[test]
    fn jitter_with_normal_distribution() {
        check_with_table(
            Qos {
                delay: ms(100),
                jitter: ms(10),
                delay_correlation: Percent(25.0),
                distribution: Distribution::Normal,
                limit: Some(1000),
                ..Qos::default()
            },
            &format!("delay 100ms 10ms 25% distribution normal {ZEROS} limit 1000"),
            "84d71700 e8030000 00000000 00000000 00000000 5a620200
             10000100 00000040 00000000 00000000  0c000300 00000000 00000000  0c000400 00000000 00000000
             14000600 00000000 00000000 00000000 00000000",
            "0c000a00 00e1f50500000000  0c000b00 8096980000000000",
        );
    }

    #[test]
    fn gilbert_elliott_rate_and_pareto() {
        check_with_table(
            Qos {
                delay: ms(1),
                jitter: ms(1),
                distribution: Distribution::Pareto,
                loss: Loss::GilbertElliott {
                    p: Percent(1.0),
                    r: Percent(10.0),
                    one_minus_h: Percent(70.0),
                    one_minus_k: Percent(0.1),
                },
                corrupt: chance(1.0, 1.0),
                rate: Some("1mbit".parse().unwrap()),
                ..Qos::default()
            },
            "loss gemodel 1% 10% 70% 0.1% rate 1mbit corrupt 1% 1% reorder 0% 0% delay 1ms 1ms distribution pareto",
            "093d0000 e8030000 00000000 00000000 00000000 093d0000
             10000100 00000000 00000000 00000000  0c000300 00000000 00000000  0c000400 295c8f02 295c8f02
             18000580 14000200 295c8f02 9a999919 cdcccc4c 37894100
             14000600 48e80100 00000000 00000000 00000000",
            "0c000a00 40420f0000000000  0c000b00 40420f0000000000",
        );
    }

    #[test]
    fn uniform_jitter_sends_no_table() {
        let qos = Qos { delay: ms(100), jitter: ms(10), ..Qos::default() };
        assert_eq!(netem_options(&qos, TEST_PSCHED.1).len(), 24 + 2 * 12 + 16 + 2 * 12 + 20);
    }

    #[test]
    fn computed_limit_goes_in_the_struct() {
        let qos = Qos { delay: ms(10), ..Qos::default() };
        assert_eq!(netem_options(&qos, TEST_PSCHED.1)[4..8], 16_667u32.to_le_bytes());
    }
}

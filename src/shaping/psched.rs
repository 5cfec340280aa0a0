//! The packet scheduler's clock and tc's arithmetic on it: times in psched ticks, the time a
//! packet takes at a rate, and the rate tables tbf and htb are sent.

use crate::error::{Context, Error, Result};

/// tc's packet size granularity in rate tables: `2^3` bytes, which is what tc picks for its
/// default MTUs (2047 for tbf, 1600 for htb) so that 256 cells cover them.
const CELL_LOG: u8 = 3;
/// `TC_LINKLAYER_ETHERNET`: the kernel computes transmit times itself, without the rate table.
const LINKLAYER_ETHERNET: u8 = 1;

/// Psched ticks per microsecond, from `/proc/net/psched` (15.625 on current kernels: a tick is
/// 64ns).
pub(crate) fn psched_ticks_per_us() -> Result<f64> {
    let path = "/proc/net/psched";
    ticks_per_us(&std::fs::read_to_string(path).context(|| format!("reading {path}"))?)
}

/// Ticks per microsecond from the text of `/proc/net/psched`, as tc computes them: its first
/// three hex words are nanoseconds per microsecond, nanoseconds per tick and the clock
/// resolution (1000000 on current kernels; 10^9 marks old kernels whose tick is a nanosecond).
fn ticks_per_us(psched: &str) -> Result<f64> {
    let bad = || Error::invalid("/proc/net/psched", format!("'{}' is not four hex numbers", psched.trim()));
    let words = psched.split_whitespace().map(|w| u32::from_str_radix(w, 16)).collect::<Result<Vec<u32>, _>>();
    let [ns_per_us, ns_per_tick, clock_res, _] = words.map_err(|_| bad())?[..] else {
        return Err(bad());
    };
    if ns_per_tick == 0 {
        return Err(bad());
    }
    let ns_per_us = if clock_res == 1_000_000_000 { ns_per_tick } else { ns_per_us };
    Ok(f64::from(ns_per_us) / f64::from(ns_per_tick) * (f64::from(clock_res) / 1e6))
}

/// `us` microseconds in ticks, rounded down and capped at `u32::MAX` (tc's `tc_core_time2tick`).
pub(super) fn ticks(us: u128, ticks_per_us: f64) -> u32 {
    (us as f64 * ticks_per_us) as u32
}

/// The ticks `size` bytes take at `bytes_per_sec`, rounded down to whole microseconds first as
/// tc does (`tc_calc_xmittime`).
pub(super) fn transmit_ticks(bytes_per_sec: u64, size: u32, ticks_per_us: f64) -> u32 {
    let us = (1e6 * (f64::from(size) / bytes_per_sec as f64)) as u32;
    ticks(u128::from(us), ticks_per_us)
}

/// The rate as `struct tc_ratespec` holds it: rates of 2^32 bytes per second and more read
/// `u32::MAX` there and go in a separate 64-bit attribute.
pub(super) fn rate32(bytes_per_sec: u64) -> u32 {
    u32::try_from(bytes_per_sec).unwrap_or(u32::MAX)
}

/// Appends `struct tc_ratespec` for Ethernet, no overhead and no minimum packet unit.
pub(super) fn ratespec(out: &mut Vec<u8>, bytes_per_sec: u64) {
    out.extend_from_slice(&[CELL_LOG, LINKLAYER_ETHERNET]);
    out.extend_from_slice(&0u16.to_le_bytes()); // overhead
    out.extend_from_slice(&(-1i16).to_le_bytes()); // cell_align, as tc sets it
    out.extend_from_slice(&0u16.to_le_bytes()); // mpu
    out.extend_from_slice(&rate32(bytes_per_sec).to_le_bytes());
}

/// The rate table tc sends with a ratespec (`tc_calc_rtable`): 256 `u32` transmit times in
/// ticks, entry `i` for packets of `(i + 1) << CELL_LOG` bytes, at the ratespec's 32-bit rate.
/// Kernels since 3.11 ignore it when the ratespec names a link layer.
pub(super) fn rate_table(bytes_per_sec: u64, ticks_per_us: f64) -> Vec<u8> {
    let rate = u64::from(rate32(bytes_per_sec));
    (1..=256u32).flat_map(|cells| transmit_ticks(rate, cells << CELL_LOG, ticks_per_us).to_le_bytes()).collect()
}

/// This machine's `/proc/net/psched` when the tc messages in the tests were captured, and the
/// ticks per microsecond it gives.
#[cfg(test)]
pub(super) const TEST_PSCHED: (&str, f64) = ("000003e8 00000040 000f4240 3b9aca00\n", 15.625);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_psched() {
        assert_eq!(ticks_per_us(TEST_PSCHED.0).unwrap(), TEST_PSCHED.1);
        // A resolution of 10^9 means nanosecond ticks, whatever the first word says (tc's rule).
        assert_eq!(ticks_per_us("000003e8 00000001 3b9aca00 3b9aca00").unwrap(), 1000.0);
        // A kernel with microsecond ticks.
        assert_eq!(ticks_per_us("000003e8 000003e8 000f4240 00000064").unwrap(), 1.0);
        for bad in ["", "000003e8 00000040 000f4240", "000003e8 00000000 000f4240 3b9aca00", "x y z w"] {
            let err = ticks_per_us(bad).unwrap_err().to_string();
            assert!(err.contains("/proc/net/psched") && err.contains("not four hex numbers"), "{err}");
        }
        let here = psched_ticks_per_us().unwrap();
        assert!(here > 0.0, "{here}");
    }

    #[test]
    fn converts_like_tc() {
        let tpu = TEST_PSCHED.1;
        assert_eq!(ticks(100_000, tpu), 1_562_500);
        assert_eq!(ticks(1, tpu), 15);
        assert_eq!(ticks(u128::from(u32::MAX), tpu), u32::MAX);
        // 4096 bytes at 10 Mbit/s: 3276.8us, counted as 3276us.
        assert_eq!(transmit_ticks(1_250_000, 4096, tpu), 51_187);
    }
}

//! tbf's options: a token bucket that limits a link to a rate, with a burst allowance.

use std::time::Duration;

use super::nla::{self, words};
use super::{psched, Rate};

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RTAB: u16 = 2;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;

/// The smallest default burst, in bytes: tc-tbf(8)'s example (`burst 32kbit`), room for two
/// full-size frames. A packet larger than the burst cannot pass (the kernel splits GSO packets).
const MIN_BURST: u32 = 4096;
/// The default burst covers this fraction of a second at the rate: the tokens of one timer tick
/// at 250 Hz, the usual `CONFIG_HZ`, as tc-tbf(8) advises (`burst >= rate / HZ`).
const BURST_HZ: u64 = 250;

/// The `TCA_OPTIONS` payload of a tbf at `rate` with a bucket of `burst` bytes and a queue of
/// `limit` bytes, as tc sends it: `TCA_TBF_PARMS` (`struct tc_tbf_qopt`, no peak rate),
/// `TCA_TBF_BURST`, `TCA_TBF_RATE64` for rates of 2^32 bytes per second and more, and the rate
/// table `TCA_TBF_RTAB` (ignored by kernels since 3.11, which compute transmit times themselves
/// because the ratespec names the link layer; sent for older ones).
pub(crate) fn tbf_options(rate: Rate, burst: u32, limit: u32, ticks_per_us: f64) -> Vec<u8> {
    let bytes_per_sec = rate.bytes_per_sec();
    let mut parms = Vec::with_capacity(36);
    psched::ratespec(&mut parms, bytes_per_sec);
    parms.extend_from_slice(&[0; 12]); // no peak rate
                                       // limit, buffer (the burst in ticks), mtu (for the peak rate)
    parms.extend(words(&[limit, psched::transmit_ticks(bytes_per_sec, burst, ticks_per_us), 0]));
    let mut out = Vec::new();
    nla::put(&mut out, TCA_TBF_PARMS, &parms);
    nla::put(&mut out, TCA_TBF_BURST, &burst.to_le_bytes());
    if bytes_per_sec > u64::from(u32::MAX) {
        nla::put(&mut out, TCA_TBF_RATE64, &bytes_per_sec.to_le_bytes());
    }
    nla::put(&mut out, TCA_TBF_RTAB, &psched::rate_table(bytes_per_sec, ticks_per_us));
    out
}

/// A burst for `rate`, in bytes, as tc users pick one: what the rate brings in 4ms (one timer
/// tick at 250 Hz), and at least 4096 bytes (two full-size frames).
pub(crate) fn tbf_burst(rate: Rate) -> u32 {
    u32::try_from(rate.bytes_per_sec() / BURST_HZ).unwrap_or(u32::MAX).max(MIN_BURST)
}

/// The queue limit, in bytes, that holds packets for at most `latency` at `rate`, computed as tc
/// does for `latency`: `rate × latency + burst`. tc users commonly give 50ms.
pub(crate) fn tbf_limit(rate: Rate, burst: u32, latency: Duration) -> u32 {
    (rate.bytes_per_sec() as f64 * latency.as_micros() as f64 / 1e6 + f64::from(burst)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shaping::nla::unhex;
    use crate::shaping::psched::TEST_PSCHED;

    /// tc 6.1's `TCA_OPTIONS` for `tc qdisc add dev a root tbf rate 10mbit burst 32kbit latency
    /// 400ms` (captured with strace; psched: `TEST_PSCHED`): a 4096-byte burst, a limit of
    /// 504096 bytes.
    #[test]
    fn same_bytes_as_tc() {
        let rate: Rate = "10mbit".parse().unwrap();
        let burst = 4096;
        let limit = tbf_limit(rate, burst, Duration::from_millis(400));
        assert_eq!(limit, 504_096);
        assert_eq!(tbf_options(rate, burst, limit, TEST_PSCHED.1), unhex(TC_10MBIT));
    }

    #[test]
    fn fast_rates_take_64_bits() {
        let rate = Rate::from_bits_per_sec(100_000_000_000);
        let options = tbf_options(rate, tbf_burst(rate), 1 << 30, TEST_PSCHED.1);
        assert_eq!(options[12..16], u32::MAX.to_le_bytes(), "the ratespec's rate");
        assert_eq!(options[48..60], unhex("0c000400 00dd0ee902000000"), "TCA_TBF_RATE64 after TCA_TBF_BURST");
        assert_eq!(options[60..64], unhex("04040200"), "then the rate table");
    }

    #[test]
    fn default_burst() {
        let burst = |rate: &str| tbf_burst(rate.parse().unwrap());
        assert_eq!(burst("1mbit"), 4096);
        assert_eq!(burst("10mbit"), 5000);
        assert_eq!(burst("1gbit"), 500_000);
        assert_eq!(burst("100tbit"), u32::MAX);
    }

    const TC_10MBIT: &str = "
    2800010003010000ffff0000d012130000000000000000000000000020b10700f3c70000000000000800060000100000040402005d000000
    bb0000002801000086010000f401000051020000af0200001c0300007a030000e803000045040000a3040000100500006e050000dc050000
    39060000970600000407000062070000d00700002d0800008b080000f808000056090000c4090000210a00007f0a0000ec0a00004a0b0000
    b80b0000150c0000730c0000e00c00003e0d0000ac0d0000090e0000670e0000d40e0000320f0000a00f0000fd0f00005b100000c8100000
    2611000094110000f11100004f120000bc1200001a13000088130000e513000043140000b01400000e1500007c150000d915000037160000
    a41600000217000070170000cd1700002b18000098180000f618000064190000c11900001f1a00008c1a0000ea1a0000581b0000b51b0000
    131c0000801c0000de1c00004c1d0000a91d0000071e0000741e0000d21e0000401f00009d1f0000fb1f000068200000c620000034210000
    91210000ef2100005c220000ba2200002823000085230000e323000050240000ae2400001c25000079250000d725000044260000a2260000
    102700006d270000cb27000038280000962800000429000061290000bf2900002c2a00008a2a0000f82a0000552b0000b32b0000202c0000
    7e2c0000ec2c0000492d0000a72d0000142e0000722e0000e02e00003d2f00009b2f00000830000066300000d4300000313100008f310000
    fc3100005a320000c83200002533000083330000f03300004e340000bc3400001935000077350000e435000042360000b03600000d370000
    6b370000d837000036380000a4380000013900005f390000cc3900002a3a0000983a0000f53a0000533b0000c03b00001e3c00008c3c0000
    e93c0000473d0000b43d0000123e0000803e0000dd3e00003b3f0000a83f00000640000074400000d14000002f4100009c410000fa410000
    68420000c54200002343000090430000ee4300005c440000b94400001745000084450000e245000050460000ad4600000b47000078470000
    d647000044480000a1480000ff4800006c490000ca490000384a0000954a0000f34a0000604b0000be4b00002c4c0000894c0000e74c0000
    544d0000b24d0000204e00007d4e0000db4e0000484f0000a64f00001450000071500000cf5000003c5100009a5100000852000065520000
    c3520000305300008e530000fc53000059540000b75400002455000082550000f05500004d560000ab5600001857000076570000e4570000
    415800009f5800000c5900006a590000d8590000355a0000935a0000005b00005e5b0000cc5b0000295c0000875c0000f45c0000525d0000
    c05d00001d5e00007b5e0000e85e0000465f0000b45f0000116000006f600000dc6000003a610000a86100000562000063620000d0620000
    2e6300009c630000f9630000
";
}

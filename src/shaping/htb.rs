//! htb's options: the root qdisc and its classes, each a rate it is guaranteed and a ceiling it
//! may borrow up to.

use super::nla::{self, words};
use super::{psched, Rate};

const TCA_HTB_PARMS: u16 = 1;
const TCA_HTB_INIT: u16 = 2;
const TCA_HTB_CTAB: u16 = 3;
const TCA_HTB_RTAB: u16 = 4;
const TCA_HTB_RATE64: u16 = 6;
const TCA_HTB_CEIL64: u16 = 7;

/// HTB's protocol version, `TC_HTB_PROTOVER`.
const VERSION: u32 = 3;
/// tc's `r2q`: a class's quantum is its rate in bytes per second over this.
const RATE_TO_QUANTUM: u32 = 10;
/// tc's default MTU for htb, added to the default bursts.
const MTU: u64 = 1600;
/// psched's clock rate on kernels with high-resolution timers (all current ones), which tc's
/// default burst divides the rate by.
const CLOCK_HZ: u64 = 1_000_000_000;

/// The `TCA_OPTIONS` payload of a root htb qdisc whose unclassified traffic goes to the class
/// with minor number `default_class` (tc's `default`, which tc reads in hex: `default 10` is
/// 0x10), as tc sends it: `TCA_HTB_INIT` with `struct tc_htb_glob` (version 3, r2q 10).
pub(crate) fn htb_qdisc_options(default_class: u32) -> Vec<u8> {
    let mut out = Vec::new();
    // version, rate2quantum, defcls, debug, direct_pkts
    nla::put(&mut out, TCA_HTB_INIT, &words(&[VERSION, RATE_TO_QUANTUM, default_class, 0, 0]));
    out
}

/// An htb class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HtbClass {
    /// The rate it is guaranteed.
    pub(crate) rate: Rate,
    /// The rate it may borrow up to.
    pub(crate) ceil: Rate,
    /// Bytes it may send at once beyond the rate.
    pub(crate) burst: u32,
    /// Bytes it may send at once beyond the ceiling.
    pub(crate) cburst: u32,
    /// Bytes it sends per turn when borrowing; 0 lets the kernel use rate / r2q, kept within
    /// 1000 and 200000 (with a warning in the kernel log when it has to).
    pub(crate) quantum: u32,
}

impl HtbClass {
    /// A class at `rate` with tc's defaults: the ceiling at the rate, bursts of
    /// `rate / 10^9 + 1600` bytes (tc's `rate / HZ + mtu` on current kernels), the kernel's
    /// quantum.
    pub(crate) fn new(rate: Rate) -> HtbClass {
        let burst = u32::try_from(rate.bytes_per_sec() / CLOCK_HZ + MTU).unwrap_or(u32::MAX);
        HtbClass { rate, ceil: rate, burst, cburst: burst, quantum: 0 }
    }
}

/// The `TCA_OPTIONS` payload of `class`, as tc sends it: `TCA_HTB_RATE64` and `TCA_HTB_CEIL64`
/// for rates of 2^32 bytes per second and more, `TCA_HTB_PARMS` (`struct tc_htb_opt`, the bursts
/// in ticks) and the rate tables `TCA_HTB_RTAB` and `TCA_HTB_CTAB`. The kernel (`htb_change_class`)
/// needs only `TCA_HTB_PARMS` with non-zero rates: it reads the tables only from ratespecs that
/// name no link layer, and these name Ethernet; they are sent for kernels before 3.11.
pub(crate) fn htb_class_options(class: &HtbClass, ticks_per_us: f64) -> Vec<u8> {
    let (rate, ceil) = (class.rate.bytes_per_sec(), class.ceil.bytes_per_sec());
    let mut out = Vec::new();
    if rate > u64::from(u32::MAX) {
        nla::put(&mut out, TCA_HTB_RATE64, &rate.to_le_bytes());
    }
    if ceil > u64::from(u32::MAX) {
        nla::put(&mut out, TCA_HTB_CEIL64, &ceil.to_le_bytes());
    }
    let mut parms = Vec::with_capacity(44);
    psched::ratespec(&mut parms, rate);
    psched::ratespec(&mut parms, ceil);
    let buffer = psched::transmit_ticks(rate, class.burst, ticks_per_us);
    let cbuffer = psched::transmit_ticks(ceil, class.cburst, ticks_per_us);
    // buffer, cbuffer, quantum, level (the kernel's to report), prio
    parms.extend(words(&[buffer, cbuffer, class.quantum, 0, 0]));
    nla::put(&mut out, TCA_HTB_PARMS, &parms);
    nla::put(&mut out, TCA_HTB_RTAB, &psched::rate_table(rate, ticks_per_us));
    nla::put(&mut out, TCA_HTB_CTAB, &psched::rate_table(ceil, ticks_per_us));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shaping::nla::unhex;
    use crate::shaping::psched::TEST_PSCHED;

    /// `tc qdisc add dev a root handle 1: htb default 1`, captured from tc 6.1.
    #[test]
    fn root_like_tc() {
        assert_eq!(htb_qdisc_options(1), unhex("18000200 03000000 0a000000 01000000 00000000 00000000"));
    }

    /// `tc class add dev a parent 1: classid 1:10 htb rate 100mbit`, captured from tc 6.1 (psched:
    /// `TEST_PSCHED`): 1600-byte bursts, 2000 ticks at 12.5 MB/s.
    #[test]
    fn class_like_tc() {
        let class = HtbClass::new("100mbit".parse().unwrap());
        assert_eq!((class.burst, class.cburst), (1600, 1600));
        assert_eq!(htb_class_options(&class, TEST_PSCHED.1), unhex(TC_100MBIT));
    }

    #[test]
    fn fast_rates_take_64_bits() {
        let class =
            HtbClass { ceil: Rate::from_bits_per_sec(40_000_000_000), ..HtbClass::new("1gbit".parse().unwrap()) };
        let options = htb_class_options(&class, TEST_PSCHED.1);
        assert_eq!(options[..12], unhex("0c000700 00f2052a01000000"), "TCA_HTB_CEIL64 first");
        assert_eq!(options[12..16], unhex("30000100"), "then TCA_HTB_PARMS");
        assert_eq!(options[16 + 8..16 + 12], 125_000_000u32.to_le_bytes(), "the rate");
        assert_eq!(options[16 + 20..16 + 24], u32::MAX.to_le_bytes(), "the ceiling, in TCA_HTB_CEIL64");
        assert_eq!(options.len(), 12 + 48 + 2 * 1028);
    }

    const TC_100MBIT: &str = "
    3000010003010000ffff000020bcbe0003010000ffff000020bcbe00d0070000d00700000000000000000000000000000404040000000000
    0f0000000f0000001f0000002e0000002e0000003e0000004e0000004e0000005d0000006d0000006d0000007d0000007d0000008c000000
    9c0000009c000000ab000000bb000000bb000000cb000000da000000da000000ea000000fa000000fa000000090100000901000019010000
    28010000280100003801000048010000480100005701000067010000670100007701000077010000860100009601000096010000a5010000
    b5010000b5010000c5010000d4010000d4010000e4010000f4010000f4010000030200000302000013020000220200002202000032020000
    420200004202000051020000610200006102000071020000710200008002000090020000900200009f020000af020000af020000bf020000
    ce020000ce020000de020000ee020000ee020000fd020000fd0200000d0300001c0300001c0300002c0300003c0300003c0300004b030000
    5b0300005b0300006b0300006b0300007a0300008a0300008a03000099030000a9030000a9030000b9030000c8030000c8030000d8030000
    e8030000e8030000f7030000f703000007040000160400001604000026040000360400003604000045040000550400005504000065040000
    6504000074040000840400008404000093040000a3040000a3040000b3040000c2040000c2040000d2040000e2040000e2040000f1040000
    f10400000105000010050000100500002005000030050000300500003f0500004f0500004f0500005f0500005f0500006e0500007e050000
    7e0500008d0500009d0500009d050000ad050000bc050000bc050000cc050000dc050000dc050000eb050000eb050000fb0500000a060000
    0a0600001a0600002a0600002a06000039060000490600004906000059060000590600006806000078060000780600008706000097060000
    97060000a7060000b6060000b6060000c6060000d6060000d6060000e5060000e5060000f506000004070000040700001407000024070000
    240700003307000043070000430700005307000053070000620700007207000072070000810700009107000091070000a1070000b0070000
    b0070000c0070000d0070000d0070000df070000df070000ef070000fe070000fe0700000e0800001e0800001e0800002d0800003d080000
    3d0800004d0800004d0800005c0800006c0800006c0800007b0800008b0800008b0800009b080000aa080000aa080000ba080000ca080000
    ca080000d9080000d9080000e9080000f8080000f80800000809000018090000180900002709000037090000370900004709000047090000
    56090000660900006609000075090000850900008509000095090000a4090000a4090000b4090000c4090000c4090000d3090000d3090000
    e3090000f2090000f209000004040300000000000f0000000f0000001f0000002e0000002e0000003e0000004e0000004e0000005d000000
    6d0000006d0000007d0000007d0000008c0000009c0000009c000000ab000000bb000000bb000000cb000000da000000da000000ea000000
    fa000000fa000000090100000901000019010000280100002801000038010000480100004801000057010000670100006701000077010000
    77010000860100009601000096010000a5010000b5010000b5010000c5010000d4010000d4010000e4010000f4010000f401000003020000
    0302000013020000220200002202000032020000420200004202000051020000610200006102000071020000710200008002000090020000
    900200009f020000af020000af020000bf020000ce020000ce020000de020000ee020000ee020000fd020000fd0200000d0300001c030000
    1c0300002c0300003c0300003c0300004b0300005b0300005b0300006b0300006b0300007a0300008a0300008a03000099030000a9030000
    a9030000b9030000c8030000c8030000d8030000e8030000e8030000f7030000f70300000704000016040000160400002604000036040000
    36040000450400005504000055040000650400006504000074040000840400008404000093040000a3040000a3040000b3040000c2040000
    c2040000d2040000e2040000e2040000f1040000f10400000105000010050000100500002005000030050000300500003f0500004f050000
    4f0500005f0500005f0500006e0500007e0500007e0500008d0500009d0500009d050000ad050000bc050000bc050000cc050000dc050000
    dc050000eb050000eb050000fb0500000a0600000a0600001a0600002a0600002a0600003906000049060000490600005906000059060000
    680600007806000078060000870600009706000097060000a7060000b6060000b6060000c6060000d6060000d6060000e5060000e5060000
    f506000004070000040700001407000024070000240700003307000043070000430700005307000053070000620700007207000072070000
    810700009107000091070000a1070000b0070000b0070000c0070000d0070000d0070000df070000df070000ef070000fe070000fe070000
    0e0800001e0800001e0800002d0800003d0800003d0800004d0800004d0800005c0800006c0800006c0800007b0800008b0800008b080000
    9b080000aa080000aa080000ba080000ca080000ca080000d9080000d9080000e9080000f8080000f8080000080900001809000018090000
    270900003709000037090000470900004709000056090000660900006609000075090000850900008509000095090000a4090000a4090000
    b4090000c4090000c4090000d3090000d3090000e3090000f2090000f2090000
";
}

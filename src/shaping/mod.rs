//! Link shaping: what a link does to its packets ([`Qos`]: delay, jitter, loss, duplication,
//! corruption, reordering, rate) and the qdisc options that make the kernel do it, encoded as
//! tc encodes them because rtnetlink has no types for netem, tbf or htb.
//!
//! This module owns the values ([`Qos`], [`Direction`], [`Percent`], [`Rate`], [`Distribution`]) and the bytes
//! of `TCA_OPTIONS` for netem, tbf and htb (qdiscs and classes), with the psched clock and tc's
//! arithmetic they depend on. It does no netlink I/O: the caller sends the bytes in its
//! `RTM_NEWQDISC` and `RTM_NEWTCLASS` messages. The encoders (`netem::netem_options`,
//! `tbf::tbf_options`, `htb::htb_qdisc_options`, `htb::htb_class_options`) take the psched
//! clock from `psched::psched_ticks_per_us`, and are checked byte for byte against the
//! messages tc 6.1 sends.

mod direction;
mod dist;
pub(crate) mod htb;
pub(crate) mod netem;
mod nla;
mod percent;
pub(crate) mod psched;
mod qos;
mod rate;
pub(crate) mod tbf;

pub use direction::Direction;
pub use percent::Percent;
pub use qos::{Chance, Distribution, Loss, Qos, Reorder};
pub use rate::Rate;

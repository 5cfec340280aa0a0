//! Benchmark of per-node wall clocks, side by side in one run:
//!
//! - clock reads: nanoseconds per C `clock_gettime(CLOCK_REALTIME)` (static and dynamic) and
//!   per Go `time.Now()`, on the host, in a node of a network without per-node wall clocks
//!   (`wall_clock = false`), in a node of a network with them at no shift, and in one shifted
//!   by +1h at +200ppm;
//! - 300 fork+exec: a C program started 300 times in a node with and without the mechanism,
//!   from the controller (`Node::exec`) and by a shell inside the node.
//!
//! `cargo run --release --example clock_bench` (as root, after `scripts/build-probes`).
//! Each figure is the median of 5 runs; it prints a markdown table.

use std::process::Command;
use std::time::Instant;

use netdriver::{ClockSkew, Network, NetworkSpec, Node};

const READS: &str = "10000000";
const EXECS: usize = 300;
const RUNS: usize = 5;

fn probe(name: &str) -> Result<String, String> {
    let path = netdriver::profile::stack_dir().join("probes").join(name);
    path.is_file()
        .then(|| path.display().to_string())
        .ok_or_else(|| format!("{}: run scripts/build-probes", path.display()))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Where a probe runs: the host, or a node.
#[derive(Clone, Copy)]
enum Place<'a> {
    Host,
    Node(&'a Node),
}

impl Place<'_> {
    fn output(self, argv: &[&str]) -> Result<String, Box<dyn std::error::Error>> {
        let mut cmd = Command::new(argv[0]);
        cmd.args(&argv[1..]);
        let out = match self {
            Place::Host => cmd.output()?,
            Place::Node(node) => node.output(&mut cmd)?,
        };
        if !out.status.success() {
            return Err(format!("{argv:?}: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Nanoseconds per clock read of `program` (a probe's `bench` mode), median of RUNS.
    fn read_ns(self, program: &str) -> Result<f64, Box<dyn std::error::Error>> {
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            runs.push(self.output(&[program, "bench", READS])?.trim().parse()?);
        }
        Ok(median(runs))
    }
}

/// Milliseconds for EXECS runs of `program now` started by the controller, median of RUNS.
fn controller_execs_ms(node: &Node, program: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        for _ in 0..EXECS {
            Place::Node(node).output(&[program, "now"])?;
        }
        runs.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(runs))
}

/// Milliseconds for EXECS runs of `program now` by a shell inside the node, median of RUNS.
fn shell_execs_ms(node: &Node, program: &str) -> Result<f64, Box<dyn std::error::Error>> {
    let script = format!("i=0; while [ $i -lt {EXECS} ]; do {program} now >/dev/null; i=$((i+1)); done");
    let mut runs = Vec::new();
    for _ in 0..RUNS {
        let start = Instant::now();
        Place::Node(node).output(&["sh", "-c", &script])?;
        runs.push(start.elapsed().as_secs_f64() * 1e3);
    }
    Ok(median(runs))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (c_static, c_dynamic, go) =
        (probe("clockprobe-c-static")?, probe("clockprobe-c-dynamic")?, probe("clockprobe-go")?);
    let mut off = NetworkSpec::new("bench-clock-off", 1);
    off.wall_clock = false;
    let off = Network::up(&off)?;
    let on = Network::up(&NetworkSpec::new("bench-clock-on", 2))?;
    let shifted = on.node("node1")?;
    let skew = ClockSkew { realtime: "+1h".parse()?, drift: "+200ppm".parse()?, ..ClockSkew::default() };
    shifted.configure_clock(skew, false)?;

    let places = [
        ("host", Place::Host),
        ("node, wall_clock = false", Place::Node(&off.nodes()[0])),
        ("node, no shift", Place::Node(&on.nodes()[0])),
        ("node, +1h at +200ppm", Place::Node(shifted)),
    ];
    println!("| clock read, ns (median of {RUNS}) | C static | C dynamic | Go time.Now() |");
    println!("|---|---:|---:|---:|");
    for (name, place) in places {
        let (s, d, g) = (place.read_ns(&c_static)?, place.read_ns(&c_dynamic)?, place.read_ns(&go)?);
        println!("| {name} | {s:.1} | {d:.1} | {g:.1} |");
    }
    println!();
    println!("| {EXECS} fork+exec of a static C program, ms (median of {RUNS}) | from the controller | by a shell in the node |");
    println!("|---|---:|---:|");
    for (name, node) in [("wall_clock = false", &off.nodes()[0]), ("per-node wall clock, +1h at +200ppm", shifted)] {
        let (from_controller, from_shell) = (controller_execs_ms(node, &c_static)?, shell_execs_ms(node, &c_static)?);
        println!("| {name} | {from_controller:.0} | {from_shell:.0} |");
    }
    off.down()?;
    on.down()?;
    Ok(())
}

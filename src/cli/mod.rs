//! Command-line face: parses arguments and translates them into library calls.

mod controller;
mod events;
mod remote;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use netdriver::{ClockSkew, Direction, Drift, Offset, Op};

/// Drive a network of nodes (network namespaces joined by a router) for integration tests.
#[derive(Debug, Parser)]
#[command(name = "netdriver", version, about)]
struct Args {
    /// The network to talk to (id or name); needed only when several are up.
    #[arg(long, global = true, env = "NETDRIVER_NETWORK")]
    network: Option<String>,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Bring a network up and start its services; tear it down on Ctrl-C or SIGTERM.
    Up(UpArgs),
    /// Bring a network up, run a command on the host, tear down, exit with its code.
    Run {
        #[command(flatten)]
        up: UpArgs,
        /// The command; it finds the network through NETDRIVER_NETWORK.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Show the nodes and services of a live network.
    Status {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run a command inside a node; its exit code passes through.
    Exec {
        /// Node name or index.
        node: String,
        /// The command and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Start, stop, kill, pause, resume, restart or reset NODE or NODE/SERVICE.
    #[command(name = "start")]
    Start { target: String },
    #[command(name = "stop", about = "Stop NODE or NODE/SERVICE (SIGTERM, then SIGKILL of the tree)")]
    Stop { target: String },
    #[command(name = "kill", about = "Kill NODE or NODE/SERVICE with SIGKILL")]
    Kill { target: String },
    #[command(name = "pause", about = "Freeze NODE or NODE/SERVICE with SIGSTOP")]
    Pause { target: String },
    #[command(name = "resume", about = "Resume NODE or NODE/SERVICE with SIGCONT")]
    Resume { target: String },
    #[command(name = "restart", about = "Stop, then start NODE or NODE/SERVICE")]
    Restart { target: String },
    #[command(name = "reset", about = "Wipe the data of NODE or NODE/SERVICE (restarting what ran)")]
    Reset { target: String },
    /// Print the logs of NODE or NODE/SERVICE.
    Logs {
        /// NODE or NODE/SERVICE.
        target: String,
        /// Which stream.
        #[arg(long, value_enum, default_value_t = Stream::Both)]
        stream: Stream,
        /// Only the last N lines of each file.
        #[arg(short = 'n', long)]
        lines: Option<usize>,
    },
    /// Split the network into groups that cannot reach each other, e.g. `partition 0,1 2,3`.
    Partition {
        /// Comma-separated node names or indexes, one argument per group.
        #[arg(required = true, num_args = 1..)]
        groups: Vec<String>,
    },
    /// Drop everything FROM sends to TO (one way).
    Block {
        /// The sender whose packets are dropped.
        from: String,
        /// The receiver.
        to: String,
    },
    /// Remove every partition and block.
    Heal,
    /// Shape a node's links (or one pair's): delay, jitter, loss, ...; `qos --clear` removes all.
    Qos(QosArgs),
    /// Set a node's clocks: its wall clock moves under running programs at once; monotonic,
    /// boottime and the time zone reach programs started from now on (see --restart).
    Clock {
        /// Node name or index.
        node: String,
        /// Shift every clock (wall, monotonic, boottime), e.g. +1h or -30s.
        #[arg(long, allow_hyphen_values = true)]
        offset: Option<Offset>,
        /// Shift only the wall clock (every program of the node, static and Go ones too).
        #[arg(long, allow_hyphen_values = true)]
        realtime: Option<Offset>,
        /// The wall clock's pace from now on, e.g. +200ppm, -0.1% or 500ppb (at most 10%).
        #[arg(long, allow_hyphen_values = true)]
        drift: Option<Drift>,
        /// Shift only CLOCK_MONOTONIC (time namespace).
        #[arg(long, allow_hyphen_values = true)]
        monotonic: Option<Offset>,
        /// Shift only CLOCK_BOOTTIME (time namespace).
        #[arg(long, allow_hyphen_values = true)]
        boottime: Option<Offset>,
        /// Time zone, e.g. Asia/Tokyo.
        #[arg(long)]
        tz: Option<String>,
        /// Restart the node's running services so they get the new clocks now.
        #[arg(long)]
        restart: bool,
    },
    /// Run a seeded fault schedule on the network (kill, pause, stop, partition, block, qos,
    /// clock), every fault undone when it ends and everything healed at the end or on Ctrl-C;
    /// without --seed and --faults, the manifest's [nemesis].
    Nemesis(NemesisArgs),
    /// Print a run's timeline (events.jsonl): every change and service state change.
    Events {
        /// A run directory (default: the live network's), e.g. one a finished run left.
        run_dir: Option<PathBuf>,
        /// Print the JSON lines as they are.
        #[arg(long)]
        json: bool,
        /// Keep printing new events until the network is torn down.
        #[arg(short, long)]
        follow: bool,
    },
    /// Reclaim what networks whose controller died left behind.
    Gc,
    /// Draw a run's timeline (RUN_DIR/events.jsonl) as one self-contained HTML page.
    Timeline {
        /// The run's directory, e.g. /var/tmp/netdriver/NAME-ID (kept after teardown).
        run_dir: PathBuf,
        /// Where to write the page (default: RUN_DIR/timeline.html).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
}

/// Bring-up options shared by `up` and `run`.
#[derive(Debug, clap::Args)]
struct UpArgs {
    /// The manifest (TOML).
    #[arg(short = 'f', long = "file", required_unless_present = "profile", conflicts_with = "profile")]
    file: Option<PathBuf>,
    /// A ready-made network instead of a manifest: bigchaindb or kvstore.
    #[arg(long)]
    profile: Option<String>,
    /// The node count (default: the manifest's, or 4 with a profile).
    #[arg(long)]
    nodes: Option<usize>,
    /// With --profile: where a program is, e.g. tendermint=/opt/tm/tendermint (repeatable).
    #[arg(long = "binary", value_name = "PROGRAM=PATH", requires = "profile")]
    binaries: Vec<String>,
}

/// `netdriver qos`: what to shape and how.
#[derive(Debug, clap::Args)]
pub(crate) struct QosArgs {
    /// The node (name or index); omit with --clear.
    #[arg(required_unless_present = "clear")]
    pub(crate) node: Option<String>,
    /// Shape only what NODE sends to this node (a pair).
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// With --to: shape the pair both ways.
    #[arg(long, requires = "to")]
    pub(crate) both_ways: bool,
    /// Which of NODE's traffic (without --to): send, receive or both.
    #[arg(long, default_value = "both", conflicts_with = "to")]
    pub(crate) direction: Direction,
    /// Delay, e.g. 100ms.
    #[arg(long)]
    pub(crate) delay: Option<String>,
    /// Jitter (needs --delay), e.g. 10ms.
    #[arg(long)]
    pub(crate) jitter: Option<String>,
    /// Correlation of successive delays, e.g. 25%.
    #[arg(long)]
    pub(crate) correlation: Option<String>,
    /// Delay distribution with jitter: uniform, normal, pareto, paretonormal.
    #[arg(long)]
    pub(crate) distribution: Option<String>,
    /// Random loss, e.g. 1%.
    #[arg(long)]
    pub(crate) loss: Option<String>,
    /// Correlation of successive losses.
    #[arg(long, requires = "loss")]
    pub(crate) loss_correlation: Option<String>,
    /// Duplicated packets, e.g. 1%.
    #[arg(long)]
    pub(crate) duplicate: Option<String>,
    /// Corrupted packets, e.g. 0.1%.
    #[arg(long)]
    pub(crate) corrupt: Option<String>,
    /// Packets sent at once, out of order (needs --delay), e.g. 10%.
    #[arg(long)]
    pub(crate) reorder: Option<String>,
    /// With --reorder: every GAP-th packet is reordered.
    #[arg(long, requires = "reorder")]
    pub(crate) gap: Option<u32>,
    /// Rate limit, e.g. 10mbit.
    #[arg(long)]
    pub(crate) rate: Option<String>,
    /// Queue limit in packets (default: enough for rate x delay).
    #[arg(long)]
    pub(crate) limit: Option<u32>,
    /// Remove the shaping: of NODE (or the pair), or with no NODE, of the whole network.
    #[arg(long)]
    pub(crate) clear: bool,
}

/// `netdriver nemesis`: the schedule.
#[derive(Debug, clap::Args)]
pub(crate) struct NemesisArgs {
    /// What every draw comes from: the same seed, nodes and options give the same schedule.
    #[arg(long, requires = "faults")]
    pub(crate) seed: Option<u64>,
    /// The kinds, comma-separated: kill, pause, stop, partition, block, qos, clock.
    #[arg(long, requires = "seed")]
    pub(crate) faults: Option<String>,
    /// Between fault starts, e.g. 2s..5s (default).
    #[arg(long, requires = "seed")]
    pub(crate) interval: Option<String>,
    /// How long each fault lasts, e.g. 1s..3s (default).
    #[arg(long, requires = "seed")]
    pub(crate) hold: Option<String>,
    /// The whole schedule, e.g. 60s (default).
    #[arg(long = "for", requires = "seed")]
    pub(crate) length: Option<String>,
    /// The services faults may pick, comma-separated (default: the profile's, or all).
    #[arg(long, requires = "seed")]
    pub(crate) services: Option<String>,
    /// The services kill and stop may pick, if fewer (default: the profile's, or --services).
    #[arg(long, requires = "seed")]
    pub(crate) kill_services: Option<String>,
    /// Print the schedule without applying it.
    #[arg(long)]
    pub(crate) plan: bool,
}

/// Which log stream to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Stream {
    Stdout,
    Stderr,
    Both,
}

/// `netdriver timeline`: writes the page and prints its path.
fn timeline(run_dir: &std::path::Path, output: Option<PathBuf>) -> netdriver::Result<ExitCode> {
    let out = output.unwrap_or_else(|| run_dir.join("timeline.html"));
    netdriver::timeline::write(run_dir, &out)?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Runs the command line; errors are printed with their cause and fix.
pub(crate) fn main() -> ExitCode {
    let args = Args::parse();
    let filter = match args.verbose {
        0 => "warn,netdriver=info",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into()))
        .with_writer(std::io::stderr)
        .init();
    let network = args.network.as_deref();
    let result = match args.command {
        Cmd::Up(up) => controller::up(&up),
        Cmd::Run { up, command } => controller::run(&up, &command),
        Cmd::Status { json } => remote::status(network, json),
        Cmd::Exec { node, command } => remote::exec(network, &node, &command),
        Cmd::Start { target } => remote::op(network, Op::Start, &target),
        Cmd::Stop { target } => remote::op(network, Op::Stop, &target),
        Cmd::Kill { target } => remote::op(network, Op::Kill, &target),
        Cmd::Pause { target } => remote::op(network, Op::Pause, &target),
        Cmd::Resume { target } => remote::op(network, Op::Resume, &target),
        Cmd::Restart { target } => remote::op(network, Op::Restart, &target),
        Cmd::Reset { target } => remote::op(network, Op::Reset, &target),
        Cmd::Logs { target, stream, lines } => remote::logs(network, &target, stream, lines),
        Cmd::Partition { groups } => remote::partition(network, &groups),
        Cmd::Block { from, to } => remote::block(network, &from, &to),
        Cmd::Heal => remote::heal(network),
        Cmd::Qos(args) => remote::qos(network, args),
        Cmd::Clock { node, offset, realtime, drift, monotonic, boottime, tz, restart } => {
            let base = ClockSkew::offset(offset.unwrap_or_default());
            let skew = ClockSkew {
                realtime: realtime.unwrap_or(base.realtime),
                drift: drift.unwrap_or(Drift::NONE),
                monotonic: monotonic.unwrap_or(base.monotonic),
                boottime: boottime.unwrap_or(base.boottime),
                tz,
            };
            remote::clock(network, &node, skew, restart)
        }
        Cmd::Nemesis(args) => remote::nemesis(network, &args),
        Cmd::Events { run_dir, json, follow } => events::events(network, run_dir.as_deref(), json, follow),
        Cmd::Gc => remote::gc(),
        Cmd::Timeline { run_dir, output } => timeline(&run_dir, output),
    };
    result.unwrap_or_else(|e| {
        eprintln!("netdriver: error: {e}");
        ExitCode::FAILURE
    })
}

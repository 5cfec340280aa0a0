//! `up` and `run`: the controller process that owns a network until it is told to stop.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use netdriver::control::Server;
use netdriver::profile::{self, Profile};
use netdriver::{Cancel, Network, Result};
use nix::sys::signal::{SigSet, Signal};

use super::remote::exit_code;
use super::UpArgs;

/// What ends a controller's wait.
enum Event {
    Signal(Signal),
    Exited(std::process::ExitStatus),
}

/// Brings the network up and serves it until SIGINT, SIGTERM or SIGHUP; one of those during
/// bring-up or service start ends it at once and tears down what was made.
pub(super) fn up(args: &UpArgs) -> Result<ExitCode> {
    let events = watch_signals();
    let network = match bring_up(args, &events.cancel) {
        Ok(network) => network,
        Err(e) => return interrupted(&events, e),
    };
    serve(&network, || {
        println!("{}", summary(&network));
        println!(
            "Ctrl-C tears it down; other shells drive it: netdriver status | exec NODE -- CMD | stop NODE[/SERVICE] ..."
        );
        let _ = events.recv();
    })?;
    eprintln!("netdriver: tearing down {}", network.id());
    network.down()?;
    Ok(ExitCode::SUCCESS)
}

/// Brings the network up, runs `command` on the host while serving, then tears down.
pub(super) fn run(args: &UpArgs, command: &[String]) -> Result<ExitCode> {
    let events = watch_signals();
    let network = match bring_up(args, &events.cancel) {
        Ok(network) => network,
        Err(e) => return interrupted(&events, e),
    };
    let code = serve(&network, || -> Result<ExitCode> {
        eprintln!("{}", summary(&network));
        let (program, rest) = command.split_first().expect("clap requires a command");
        let mut child =
            Command::new(program).args(rest).env("NETDRIVER_NETWORK", network.id()).spawn().map_err(|e| {
                netdriver::Error::Invalid { what: "command".into(), message: format!("cannot run '{program}': {e}") }
            })?;
        let pid = child.id() as i32;
        let tx = events.sender.clone();
        std::thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = tx.send(Event::Exited(status));
            }
        });
        match events.recv() {
            Event::Exited(status) => Ok(exit_code(status)),
            Event::Signal(sig) => {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGTERM);
                Ok(ExitCode::from(128 + sig as u8))
            }
        }
    })?;
    network.down()?;
    code
}

/// The exit of a bring-up that failed: 128 + the signal's number when a signal cancelled it
/// (what was made is torn down by then), else the error.
fn interrupted(events: &Events, e: netdriver::Error) -> Result<ExitCode> {
    match (&e, events.receiver.try_recv()) {
        (netdriver::Error::Cancelled(what), Ok(Event::Signal(sig))) => {
            eprintln!("netdriver: {sig} while {what}: stopped, and everything made is torn down");
            Ok(ExitCode::from(128 + sig as u8))
        }
        _ => Err(e),
    }
}

fn bring_up(args: &UpArgs, cancel: &Cancel) -> Result<Network> {
    let (profile, spec): (Arc<dyn Profile>, _) = match (&args.file, &args.profile) {
        (Some(file), _) => {
            if let Some(binary) = args.binaries.first() {
                return Err(netdriver::Error::Invalid {
                    what: "--binary".into(),
                    message: format!("'{binary}': a manifest names its programs itself; --binary goes with --profile"),
                });
            }
            let manifest = profile::Manifest::load(file)?;
            let spec = manifest.spec("", args.nodes.unwrap_or(manifest.nodes()))?;
            (Arc::new(manifest), spec)
        }
        (None, Some(name)) => {
            let binaries = args.binaries.iter().map(|b| parse_binary(b)).collect::<Result<Vec<_>>>()?;
            let profile = profile::by_name(name, &binaries)?;
            let spec = profile.spec(name, args.nodes.unwrap_or(4))?;
            (profile, spec)
        }
        (None, None) => unreachable!("clap requires --file or --profile"),
    };
    let total = spec.nodes.len();
    let started = Instant::now();
    let mut shown = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let network = netdriver::events::acting_as(netdriver::Actor::Cli, || {
        profile.up_with(
            &spec,
            &mut |p| {
                let done = p.done == p.total;
                if total >= 50 && (done || (tty && shown.elapsed() > Duration::from_millis(250))) {
                    shown = Instant::now();
                    eprint!("\rnetdriver: bringing up nodes: {}/{}", p.done, p.total);
                    if done {
                        eprintln!(" ({:.2} s)", started.elapsed().as_secs_f64());
                    }
                }
            },
            cancel,
        )
    })?;
    network.set_actor(netdriver::Actor::Cli);
    if !spec.services.is_empty() {
        eprintln!("netdriver: starting {} service(s) on {total} node(s)...", spec.services.len());
        profile.start(&network)?;
    }
    Ok(network)
}

/// `PROGRAM=PATH` of `--binary`.
fn parse_binary(arg: &str) -> Result<(String, PathBuf)> {
    match arg.split_once('=') {
        Some((program, path)) if !program.is_empty() && !path.is_empty() => {
            Ok((program.to_string(), PathBuf::from(path)))
        }
        _ => Err(netdriver::Error::Invalid {
            what: "--binary".into(),
            message: format!("'{arg}': use PROGRAM=PATH, e.g. tendermint=/usr/local/bin/tendermint"),
        }),
    }
}

/// Serves the control socket while `body` runs: the socket is bound before `body` starts, so
/// what `body` announces can be driven at once.
fn serve<T>(network: &Network, body: impl FnOnce() -> T) -> Result<T> {
    let server = Server::bind(network)?;
    Ok(std::thread::scope(|s| {
        s.spawn(|| server.run());
        let out = body();
        server.shutdown();
        out
    }))
}

fn summary(network: &Network) -> String {
    let mut text = format!(
        "netdriver: network {} is up (NETDRIVER_NETWORK={}): {} node(s) on {}, host at {}{}, logs in {}",
        network.name(),
        network.id(),
        network.nodes().len(),
        network.subnet(),
        network.host_ip(),
        network.subnet6().map_or(String::new(), |s6| format!("; {s6}, host at {}", s6.host())),
        network.run_dir().display()
    );
    for node in network.nodes().iter().take(8) {
        let services: Vec<String> = node.services().iter().map(|s| format!("{} {}", s.name(), s.state())).collect();
        let ip6 = node.ip6().map_or(String::new(), |ip| format!("{ip:<20} "));
        text.push_str(format!("\n  {:<8} {:<15} {ip6}{}", node.name(), node.ip(), services.join(", ")).trim_end());
    }
    if network.nodes().len() > 8 {
        let _ = write!(text, "\n  ... and {} more", network.nodes().len() - 8);
    }
    text
}

/// Signals delivered to a channel: blocked in every thread (call before any thread starts),
/// then received by one watcher thread, which also raises `cancel` so that a bring-up or a
/// readiness wait ends at once. Children get a clean mask and dispositions (see the process
/// module of the library).
struct Events {
    sender: mpsc::Sender<Event>,
    receiver: mpsc::Receiver<Event>,
    cancel: Cancel,
}

impl Events {
    fn recv(&self) -> Event {
        self.receiver.recv().expect("the signal watcher never stops")
    }
}

fn watch_signals() -> Events {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(sig);
    }
    set.thread_block().expect("blocking signals");
    let (sender, receiver) = mpsc::channel();
    let (tx, cancel) = (sender.clone(), Cancel::new());
    let raise = cancel.clone();
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            raise.cancel();
            let _ = tx.send(Event::Signal(sig));
        }
    });
    Events { sender, receiver, cancel }
}

//! Commands that talk to a live network through its control socket.

use std::process::ExitCode;

use netdriver::control::Client;
use netdriver::nemesis::{FaultKind, NemesisSpec, Range};
use netdriver::{Op, Qos, QosTarget, Result};

use super::{NemesisArgs, Stream};

pub(super) fn status(network: Option<&str>, json: bool) -> Result<ExitCode> {
    let status = Client::find(network)?.status()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status).expect("status serializes"));
        return Ok(ExitCode::SUCCESS);
    }
    let on = match &status.subnet6 {
        Some(s6) => format!("{} and {s6}", status.subnet),
        None => status.subnet.clone(),
    };
    println!("network {} (id {}) on {on}, logs in {}", status.name, status.id, status.run_dir.display());
    // The IP6 column only in a dual-stack network.
    let dual = status.subnet6.is_some();
    let row = |node: &str, ip: &str, ip6: &str, rest: [&str; 3]| -> Vec<String> {
        [node, ip].into_iter().chain(dual.then_some(ip6)).chain(rest).map(String::from).collect()
    };
    let mut rows = vec![row("NODE", "IP", "IP6", ["SERVICE", "STATE", "PID"])];
    for node in &status.nodes {
        let ip6 = node.ip6.as_deref().unwrap_or_default();
        if node.services.is_empty() {
            rows.push(row(&node.name, &node.ip, ip6, ["-"; 3]));
        }
        for s in &node.services {
            let pid = s.pid.map_or("-".into(), |p| p.to_string());
            rows.push(row(&node.name, &node.ip, ip6, [&s.name, &s.state, &pid]));
        }
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
    for row in rows {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        println!("{}", cells.join("  ").trim_end());
    }
    if !status.cuts.is_empty() {
        println!("cut (traffic dropped):");
        for cut in &status.cuts {
            println!("  {} -> {}", node_list(&cut.from), node_list(&cut.to));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn exec(network: Option<&str>, node: &str, command: &[String]) -> Result<ExitCode> {
    let status = Client::find(network)?.exec(node, command)?;
    Ok(exit_code(status))
}

pub(super) fn op(network: Option<&str>, op: Op, target: &str) -> Result<ExitCode> {
    Client::find(network)?.op(op, target)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn partition(network: Option<&str>, groups: &[String]) -> Result<ExitCode> {
    let groups = groups.iter().map(|g| g.split(',').filter(|n| !n.is_empty()).map(str::to_string).collect()).collect();
    Client::find(network)?.partition(groups)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn block(network: Option<&str>, from: &str, to: &str) -> Result<ExitCode> {
    Client::find(network)?.block(from, to)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn clock(network: Option<&str>, node: &str, skew: netdriver::ClockSkew, restart: bool) -> Result<ExitCode> {
    let report = Client::find(network)?.clock(node, skew, restart)?;
    for (program, reason) in &report.unreached {
        eprintln!("netdriver: warning: {node}: {program} runs on the host's wall clock: {reason}");
    }
    if !restart && !report.restart_needed.is_empty() {
        eprintln!(
            "netdriver: {node}: still on the old clocks until restarted (or use --restart): {}",
            report.restart_needed.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn qos(network: Option<&str>, args: super::QosArgs) -> Result<ExitCode> {
    let Some(node) = args.node else {
        Client::find(network)?.clear_qos()?;
        return Ok(ExitCode::SUCCESS);
    };
    // Values are checked before the network is looked for.
    let qos = if args.clear {
        Qos::default()
    } else {
        let counts = [("gap", args.gap.map(|g| g.to_string())), ("limit", args.limit.map(|l| l.to_string()))];
        let texts = [
            ("delay", args.delay),
            ("jitter", args.jitter),
            ("correlation", args.correlation),
            ("distribution", args.distribution),
            ("loss", args.loss),
            ("loss_correlation", args.loss_correlation),
            ("duplicate", args.duplicate),
            ("corrupt", args.corrupt),
            ("reorder", args.reorder),
            ("rate", args.rate),
        ];
        let settings: Vec<(&str, String)> =
            texts.into_iter().chain(counts).filter_map(|(key, value)| value.map(|v| (key, v))).collect();
        let qos = Qos::from_settings(settings.iter().map(|(k, v)| (*k, v.as_str())))?;
        if qos.is_clear() {
            return Err(netdriver::Error::Invalid {
                what: "qos".into(),
                message: "give at least one of --delay, --loss, --duplicate, --corrupt, --reorder, --rate, or --clear"
                    .into(),
            });
        }
        qos
    };
    let target = match args.to {
        Some(to) => QosTarget::Pair { from: node, to, both_ways: args.both_ways },
        None => QosTarget::node(node, args.direction),
    };
    Client::find(network)?.qos(target, qos)?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn nemesis(network: Option<&str>, args: &NemesisArgs) -> Result<ExitCode> {
    let spec = match (args.seed, &args.faults) {
        (Some(seed), Some(faults)) => {
            let mut spec = NemesisSpec::new(seed).faults(FaultKind::parse_list(faults)?);
            if let Some(interval) = &args.interval {
                spec.interval = Range::parse("interval", interval)?;
            }
            if let Some(hold) = &args.hold {
                spec.hold = Range::parse("hold", hold)?;
            }
            if let Some(length) = &args.length {
                spec.length = netdriver::units::parse_duration(length)?;
            }
            if let Some(services) = &args.services {
                spec = spec.services(services.split(',').map(str::trim));
            }
            if let Some(services) = &args.kill_services {
                spec = spec.kill_services(services.split(',').map(str::trim));
            }
            spec.validate()?;
            Some(spec)
        }
        _ => None,
    };
    let client = Client::find(network)?;
    print!("{}", client.nemesis_plan(spec.clone())?);
    if args.plan {
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!("netdriver: running the schedule (Ctrl-C stops it, every fault undone)...");
    let history = client.nemesis(spec)?;
    print!("{history}");
    Ok(ExitCode::SUCCESS)
}

pub(super) fn heal(network: Option<&str>) -> Result<ExitCode> {
    Client::find(network)?.heal()?;
    Ok(ExitCode::SUCCESS)
}

pub(super) fn logs(network: Option<&str>, target: &str, stream: Stream, lines: Option<usize>) -> Result<ExitCode> {
    for log in Client::find(network)?.logs(target)? {
        let files = match stream {
            Stream::Stdout => vec![("stdout", log.stdout)],
            Stream::Stderr => vec![("stderr", log.stderr)],
            Stream::Both => vec![("stdout", log.stdout), ("stderr", log.stderr)],
        };
        for (name, path) in files {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let shown = &all[all.len().saturating_sub(lines.unwrap_or(usize::MAX))..];
            println!("==> {} {name} ({}) <==", log.service, path.display());
            for l in shown {
                println!("{l}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) fn gc() -> Result<ExitCode> {
    let report = netdriver::gc()?;
    if report.runs.is_empty() {
        println!("nothing to reclaim");
    } else {
        println!(
            "reclaimed {} dead run(s) ({}): {} process(es) killed, {} link(s) and {} director(ies) removed (logs kept)",
            report.runs.len(),
            report.runs.join(", "),
            report.processes,
            report.links,
            report.dirs
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A child's exit status as this process's exit code (128 + signal for a killed child).
pub(super) fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status.code().or_else(|| status.signal().map(|s| 128 + s)).unwrap_or(1);
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// Nodes as `a,b,c`, or `first ... last (N nodes)` past eight.
fn node_list(nodes: &[String]) -> String {
    match nodes {
        [first, .., last] if nodes.len() > 8 => format!("{first} ... {last} ({} nodes)", nodes.len()),
        _ => nodes.join(","),
    }
}

//! The `netdriver` command: brings networks up from manifests and drives live ones. Run with
//! `NETDRIVER_SUPERVISE` set, it is a network's clock supervisor instead.

mod cli;

fn main() -> std::process::ExitCode {
    if std::env::var_os(netdriver::wallclock::SUPERVISE).is_some() {
        netdriver::wallclock::supervise();
    }
    cli::main()
}

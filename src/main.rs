//! The `netdriver` command: brings networks up from manifests and drives live ones.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}

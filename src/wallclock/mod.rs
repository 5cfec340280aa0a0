//! One wall clock per node, for every program in it: dynamically linked or static, C, Go or
//! Python, their threads and every program they exec later.
//!
//! Every process netdriver starts in a node installs, just before it execs, a seccomp filter
//! ([`filter`]) that hands each `execve` of it and its descendants to the network's
//! supervisor ([`supervisor`]), a process of its own. The supervisor lets the exec go on and,
//! before the new program runs, maps the node's clock page ([`page`]) and a small stub
//! ([`stub`]) into it and points the vDSO's `clock_gettime`, `gettimeofday` and `time` at the
//! stub ([`inject`], [`vdso`]). The stub adds the page's shift to the wall clocks and passes
//! every other clock through; writing the page changes the clock of every running program of
//! the node at once.
//!
//! Out of reach: raw clock system calls (they skip the vDSO), the kernel's own idea of the
//! wall clock (absolute CLOCK_REALTIME deadlines such as `pthread_cond_timedwait` or timerfd
//! with TIMER_ABSTIME, file and socket timestamps), programs exec'd by a tracer (a debugger,
//! strace) or from a thread other than their main one, and 32-bit programs.

mod filter;
mod inject;
pub(crate) mod page;
mod stub;
mod supervisor;
mod vdso;

pub(crate) use filter::Hook;
pub(crate) use page::{Page, Setting};
pub(crate) use supervisor::Supervisor;
pub use supervisor::{supervise, SUPERVISE};

use crate::error::{Error, Result};

/// Checks, before a network is made, that its wall clocks can work here: the supervisor's
/// program is found, and the kernel lets it trace.
pub(crate) fn preflight() -> Result<()> {
    supervisor::program()?;
    let scope = std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").unwrap_or_default();
    if scope.trim() == "3" {
        return Err(Error::KernelFeature {
            feature: "ptrace (kernel.yama.ptrace_scope is 3), which per-node wall clocks need".into(),
            fix: "set it to 1 or 2 (sysctl kernel.yama.ptrace_scope=1, possible only at boot for 3), or bring the network up with wall_clock = false".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use super::*;

    /// The mechanism end to end, with this binary's netdriver program as supervisor: a
    /// program exec'd under the hook reads the page's clock, and follows a change at once.
    #[test]
    fn a_program_under_the_hook_reads_the_pages_clock() {
        if nix::unistd::geteuid().as_raw() != 0 {
            return eprintln!("skipped: needs root");
        }
        let dir = std::path::Path::new("/var/tmp").join(format!("netdriver-wallclock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut page = Page::create(&dir.join("clock")).unwrap();
        let now = || std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        page.set(Setting { offset_ns: 3_600_000_000_000, base_ns: 0, rate_ppb: 0 });
        let supervisor = match Supervisor::start(&[], &dir.join("supervisor.log")) {
            Ok(s) => s,
            Err(e) => return eprintln!("skipped: {e}"),
        };
        let path = page.path().to_path_buf();
        let read = |argv: &[&str]| -> i64 {
            let hook = supervisor.hook(&path);
            let mut cmd = Command::new(argv[0]);
            cmd.args(&argv[1..]);
            // SAFETY: the hook makes plain system calls on data made before the fork.
            unsafe { cmd.pre_exec(move || hook.install()) };
            let out = cmd.output().unwrap();
            assert!(out.status.success(), "{argv:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        let shift = read(&["date", "+%s"]) - now();
        eprintln!("measured: date under the hook read {shift} s ahead");
        assert!((3599..=3601).contains(&shift), "date read {shift} s ahead");
        let shift = read(&["sh", "-c", "date +%s"]) - now();
        assert!((3599..=3601).contains(&shift), "a child of sh read {shift} s ahead");
        page.set(Setting { offset_ns: -30_000_000_000, base_ns: 0, rate_ppb: 0 });
        let shift = read(&["date", "+%s"]) - now();
        assert!((-31..=-29).contains(&shift), "after the change: {shift} s");
        drop(supervisor);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

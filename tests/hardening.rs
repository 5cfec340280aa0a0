//! A hostile local user: the run root and the registry's directory taken over before root's
//! first run (in a private mount namespace whose /var/tmp and /run are fresh, as on a new
//! host), modes under `umask 000`, the control socket refusing other users, and teardown,
//! reset and logs that follow no symlink a service (or anyone) planted.

use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::{
    as_nobody, run_dir_of, shell_service, signal, stderr, teardown, up, up_command, wait_exit, wait_no_leftovers,
    write_manifest, BIN,
};
use netdriver::NetworkSpec;

/// Runs `script` with sh as root in a private mount namespace whose /var/tmp (1777) and /run
/// (0755) are empty, as on a host before netdriver ever ran. `$ND` is netdriver, `$NOBODY`
/// runs a command as nobody.
fn on_fresh_host(script: &str) -> Output {
    let setup = "mount -t tmpfs -o mode=1777 tmpfs /var/tmp && mount -t tmpfs -o mode=0755 tmpfs /run";
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &format!("{setup} && {script}")])
        .env("ND", BIN)
        .env("NOBODY", "setpriv --reuid=65534 --regid=65534 --clear-groups")
        .output()
        .expect("running unshare")
}

#[test]
fn a_run_root_or_registry_others_can_change_is_refused_and_nothing_is_made() {
    let m = write_manifest("hard-root", "[network]\nname = \"hard-root\"\nnodes = 1\n");
    let shared = write_manifest(
        "hard-root-manifest",
        "[network]\nname = \"hard-shared\"\nnodes = 1\nrun_root = \"/var/tmp/shared\"\n",
    );
    let script = format!(
        r#"
try() {{ echo "== $1"; "$ND" run -f "$2" -- true 2>&1; echo "exit=$?"; echo "made=$(find /var/tmp /run -mindepth 1 | grep -cv "^$3")"; }}
$NOBODY mkdir /var/tmp/netdriver
try owned {m} /var/tmp/netdriver
rm -rf /var/tmp/netdriver
$NOBODY mkdir /var/tmp/elsewhere && $NOBODY ln -s /var/tmp/elsewhere /var/tmp/netdriver
try symlink {m} '/var/tmp/\(elsewhere\|netdriver\)'
rm -rf /var/tmp/netdriver /var/tmp/elsewhere
mkdir -m 0777 /var/tmp/netdriver && chmod 0777 /var/tmp/netdriver
try writable {m} /var/tmp/netdriver
rm -rf /var/tmp/netdriver
mkdir /var/tmp/shared && chmod 0777 /var/tmp/shared
try manifest {shared} /var/tmp/shared
rm -rf /var/tmp/shared
mkdir -m 0777 /run/netdriver && chmod 0777 /run/netdriver
try registry {m} '/run/netdriver\|/var/tmp/netdriver'
"#,
        m = m.display(),
        shared = shared.display()
    );
    let out = on_fresh_host(&script);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    eprintln!("{text}");
    let case = |name: &str| {
        let start = text.find(&format!("== {name}\n")).unwrap_or_else(|| panic!("no case {name} in:\n{text}"));
        let rest = &text[start..];
        rest[..rest[3..].find("== ").map_or(rest.len(), |i| i + 3)].to_string()
    };
    for (name, phrases) in [
        ("owned", &["invalid run_root: /var/tmp/netdriver belongs to uid 65534, not to root", "remove it"][..]),
        ("symlink", &["invalid run_root: /var/tmp/netdriver is a symlink", "give the real path"]),
        ("writable", &["invalid run_root: /var/tmp/netdriver is writable by others (mode 0777)"]),
        ("manifest", &["invalid run_root: /var/tmp/shared is writable by others (mode 0777)"]),
        ("registry", &["invalid registry directory: /run/netdriver is writable by others (mode 0777)"]),
    ] {
        let case = case(name);
        for phrase in phrases {
            assert!(case.contains(phrase), "{name}: {case:?} lacks {phrase:?}");
        }
        assert!(case.contains("exit=1"), "{name}: {case}");
        // Only the planted directories themselves (and, once the run root passed, the
        // registry's own) are in the fresh /var/tmp and /run: no run directory, no record.
        assert!(case.contains("made=0"), "{name} made something: {case}");
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).mode() & 0o7777
}

#[test]
fn modes_hold_under_umask_000_and_the_socket_serves_root_alone() {
    let m = write_manifest(
        "hard-modes",
        "[network]\nname = \"hard-modes\"\nnodes = 2\n\n[[service]]\nname = \"app\"\ncommand = \"sleep\"\nargs = [\"1000\"]\n",
    );
    let (mut child, id) =
        up_command(Command::new("sh").args(["-c", &format!("umask 000 && exec {BIN} up -f {}", m.display())]));
    let run = run_dir_of(&id);
    let registry = Path::new("/run/netdriver");
    let expected = [
        (registry.to_path_buf(), 0o755),
        (registry.join("lock"), 0o600),
        (registry.join(format!("{id}.json")), 0o644),
        (registry.join(format!("{id}.sock")), 0o600),
        (run.parent().unwrap().to_path_buf(), 0o755),
        (run.clone(), 0o755),
        (run.join("hosts.txt"), 0o644),
        (run.join("node0"), 0o700),
        (run.join("node0/tmp"), 0o1777),
        (run.join("node0/app"), 0o700),
        (run.join("node0/app/stdout.log"), 0o644),
        (run.join("node0/app/stderr.log"), 0o644),
        (run.join("node0/app/data"), 0o700),
    ];
    for (path, want) in &expected {
        assert_eq!(mode(path), *want, "{} has mode {:04o}, want {want:04o}", path.display(), mode(path));
        assert_eq!(std::fs::symlink_metadata(path).unwrap().uid(), 0, "{} is not root's", path.display());
    }

    // Another user cannot connect to the socket, nor plant anything in a node's files.
    let out = as_nobody(&[BIN, "--network", &id, "status"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("access to the control socket of network hard-modes"), "{}", stderr(&out));
    let planted = run.join("node0/tmp/planted");
    assert!(!as_nobody(&["touch", planted.to_str().unwrap()]).status.success(), "nobody wrote into node0's /tmp");
    let log = run.join("node0/app/stdout.log");
    let append = format!("echo evil >> {}", log.display());
    assert!(!as_nobody(&["sh", "-c", &append]).status.success(), "nobody appended to a log");

    // Were the socket's mode ever wrong, the server checks who connects all the same.
    std::fs::set_permissions(registry.join(format!("{id}.sock")), std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = as_nobody(&[BIN, "--network", &id, "stop", "node0"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("permission denied: uid 65534 may not drive network hard-modes")
            && stderr(&out).contains("serves root and uid 0"),
        "{}",
        stderr(&out)
    );
    let status = crate::common::nd(&["--network", &id, "status"]);
    assert!(crate::common::stdout(&status).matches("running").count() == 2, "nobody's stop did something");

    signal(&child.0, nix::sys::signal::Signal::SIGTERM);
    assert!(wait_exit(&mut child.0, Duration::from_secs(20)).success());
    wait_no_leftovers(&id);
}

/// A directory with a file, standing for what a user cares about.
fn victim(name: &str) -> std::path::PathBuf {
    let dir = Path::new("/var/tmp").join(format!("netdriver-victim-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("keep"), "precious").unwrap();
    dir
}

#[test]
fn teardown_and_reset_remove_symlinks_not_what_they_point_to() {
    let network = up(&NetworkSpec::new("t-hard-links", 1).service(shell_service("app", "exec sleep 1000")));
    network.start().unwrap();
    let target = victim("links");
    let node = &network.nodes()[0];
    let app = node.service("app").unwrap();
    let plant = |dir: &Path| {
        symlink(&target, dir.join("dir-link")).unwrap();
        symlink(target.join("keep"), dir.join("file-link")).unwrap();
    };
    plant(app.data_dir());
    app.reset().unwrap();
    assert_eq!(std::fs::read_dir(app.data_dir()).unwrap().count(), 0, "reset left something in the data directory");
    plant(app.data_dir());
    plant(&node.dir().join("tmp"));
    let (data, tmp) = (app.data_dir().to_path_buf(), node.dir().join("tmp"));
    teardown(network);
    assert!(!data.exists() && !tmp.exists(), "teardown left the data directory or /tmp");
    assert_eq!(std::fs::read_to_string(target.join("keep")).unwrap(), "precious");
    std::fs::remove_dir_all(target).unwrap();
}

#[test]
fn a_log_that_is_a_symlink_is_refused_not_followed() {
    let network = up(&NetworkSpec::new("t-hard-log", 1).service(shell_service("app", "exec sleep 1000")));
    let target = victim("log");
    let app = network.nodes()[0].service("app").unwrap();
    symlink(target.join("keep"), app.stdout_log()).unwrap();
    let err = app.start().unwrap_err().to_string();
    assert!(err.contains("is a symlink; netdriver writes no file through one"), "{err}");
    assert_eq!(std::fs::read_to_string(target.join("keep")).unwrap(), "precious");
    std::fs::remove_file(app.stdout_log()).unwrap();
    teardown(network);
    std::fs::remove_dir_all(target).unwrap();
}

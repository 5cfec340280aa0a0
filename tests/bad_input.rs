//! Bad input, as a table: each manifest or command line is refused with a message naming the
//! field and the fix, and leaves nothing behind: no run directory, namespace, link, record or
//! process. Then what is fine although it looks odd: a service waiting for one defined after
//! it, and routes (IPv4 and IPv6) in other tables or with short prefixes that the subnet
//! picker must avoid.

use std::collections::BTreeSet;
use std::process::Command;

use crate::common::{assert_failed_bringup_left_nothing, nd, stderr, teardown, up, uplinks, write_manifest};
use netdriver::{ClockSkew, Error, Network, NetworkSpec, Probe, ServiceSpec};

const RUN_ROOT: &str = "/var/tmp/netdriver";

/// The entries of the run root and the network namespaces this process holds.
fn made() -> (BTreeSet<String>, usize) {
    let runs = std::fs::read_dir(RUN_ROOT)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let netns = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .flatten()
        .filter(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.to_string_lossy().starts_with("net:[")))
        .count();
    (runs, netns)
}

/// A manifest of a 2-node network called `name` with `extra` appended, one service `app`
/// unless `extra` brings its own.
fn manifest(name: &str, network: &str, services: &str) -> String {
    let services = if services.is_empty() {
        "[[service]]\nname = \"app\"\ncommand = \"sleep\"\nargs = [\"1000\"]\n"
    } else {
        services
    };
    format!("[network]\nname = \"{name}\"\nnodes = 2\n{network}\n{services}")
}

#[test]
fn bad_manifests_and_arguments_are_refused_and_make_nothing() {
    let big = std::env::temp_dir().join(format!("netdriver-big-{}.toml", std::process::id()));
    std::fs::write(&big, format!("[network]\nnodes = 2\n# {}\n", "x".repeat(2 << 20))).unwrap();
    let svc = |body: &str| format!("[[service]]\nname = \"app\"\ncommand = \"sleep\"\nargs = [\"1000\"]\n{body}\n");
    let named = |name: &str| format!("[[service]]\nname = \"{name}\"\ncommand = \"true\"\n");
    // (case, network table lines, services, the phrases of the error)
    let cases: Vec<(&str, String, String, Vec<&str>)> = vec![
        (
            "tz-path",
            String::new(),
            format!("{}\n[[clock]]\nnode = \"node0\"\ntz = \"/etc/passwd\"\n", svc("")),
            vec!["clock[0].tz", "'/etc/passwd' is not a zone of /usr/share/zoneinfo", "e.g. Asia/Tokyo"],
        ),
        (
            "tz-escape",
            String::new(),
            format!("{}\n[[clock]]\nnode = \"node0\"\ntz = \"../../../etc/passwd\"\n", svc("")),
            vec!["clock[0].tz", "is not a zone"],
        ),
        ("name-dotdot", String::new(), named(".."), vec!["service[0].name", "'..': it may not start with '.'"]),
        ("name-dot", String::new(), named("."), vec!["service[0].name", "'.'"]),
        ("name-tmp", String::new(), named("tmp"), vec!["service[0].name", "`tmp` is the node's /tmp"]),
        ("name-long", String::new(), named(&"x".repeat(300)), vec!["service[0].name", "use 1 to 64 letters"]),
        ("name-slash", String::new(), named("a/b"), vec!["service[0].name", "use 1 to 64 letters"]),
        (
            "pattern",
            String::new(),
            svc("env = { PEERS = \"{all:%foo}\" }"),
            vec!["service[0].env.PEERS", "unknown '%foo' in a pattern", "%name, %ip, %ip6, %index"],
        ),
        (
            "ip6-without-ipv6",
            String::new(),
            svc("env = { ME = \"[{ip6}]\" }"),
            vec!["'[{ip6}]' names an IPv6 value", "set ipv6 = true"],
        ),
        (
            "subnet6-long",
            "ipv6 = true\nsubnet6 = \"fd00:6e64::/96\"".into(),
            String::new(),
            vec!["network.subnet6", "prefix /96 must be from /8 to /64"],
        ),
        (
            "multicast",
            "subnet = \"224.1.0.0/24\"".into(),
            String::new(),
            vec!["network.subnet", "multicast (224.0.0.0/4)", "pick a private one"],
        ),
        ("loopback", "subnet = \"127.0.1.0/24\"".into(), String::new(), vec!["network.subnet", "loopback"]),
        ("this-network", "subnet = \"0.0.0.0/24\"".into(), String::new(), vec!["network.subnet", "\"this network\""]),
        (
            "broadcast",
            "subnet = \"255.255.255.0/24\"".into(),
            String::new(),
            vec!["network.subnet", "broadcast address"],
        ),
        ("link-local", "subnet = \"169.254.7.0/24\"".into(), String::new(), vec!["network.subnet", "link-local"]),
        (
            "probe",
            String::new(),
            svc("ready = { http = \"not a url\" }"),
            vec!["service[0].ready.http", "'not a url' is not a URL to probe", "use e.g. http://{ip}:8080/health"],
        ),
        (
            "bind-root",
            String::new(),
            svc("binds = { \"/\" = \"{data}\" }"),
            vec!["service[0].binds.\"/\"", "the target / is the node's root"],
        ),
        (
            "bind-relative-target",
            String::new(),
            svc("binds = { \"var/lib\" = \"{data}\" }"),
            vec!["binds", "the target var/lib is relative"],
        ),
        (
            "bind-relative-source",
            String::new(),
            svc("binds = { \"/var/lib\" = \"data\" }"),
            vec!["binds.\"/var/lib\"", "the source data is relative"],
        ),
        (
            "bind-no-source",
            String::new(),
            svc("binds = { \"/var/lib\" = \"/nonexistent/source\" }"),
            vec!["the source /nonexistent/source does not exist", "only in the run directory"],
        ),
        (
            "bind-no-target",
            String::new(),
            svc("binds = { \"/nonexistent/target\" = \"{data}\" }"),
            vec!["/nonexistent/target does not exist on the host"],
        ),
        (
            "offset-ahead",
            String::new(),
            format!("{}\n[[clock]]\nnode = \"node0\"\nmonotonic = \"+100000d\"\n", svc("")),
            vec![
                "clock[0]",
                "+100000d for CLOCK_MONOTONIC",
                "outside the kernel's 0 to 4611686018 s",
                "use an offset from",
            ],
        ),
        (
            "offset-behind",
            String::new(),
            format!("{}\n[[clock]]\nnode = \"node0\"\nboottime = \"-100000d\"\n", svc("")),
            vec!["-100000d for CLOCK_BOOTTIME", "outside the kernel's"],
        ),
        (
            "offset-huge",
            String::new(),
            format!("{}\n[[clock]]\nnode = \"node0\"\noffset = \"+300000d\"\n", svc("")),
            vec!["clock[0].offset", "'+300000d' is too long"],
        ),
        ("root-empty", "run_root = \"\"".into(), String::new(), vec!["network.run_root", "it is empty"]),
        (
            "root-file",
            "run_root = \"/etc/hostname\"".into(),
            String::new(),
            vec!["network.run_root", "/etc/hostname is not a directory"],
        ),
        (
            "root-device",
            "run_root = \"/dev/null\"".into(),
            String::new(),
            vec!["network.run_root", "/dev/null is not a directory"],
        ),
        (
            "cycle",
            String::new(),
            format!("{}after = [\"b\"]\n[[service]]\nname = \"b\"\ncommand = \"true\"\nafter = [\"app\"]\n", svc("")),
            vec!["service[0].after", "goes round in a circle: app waits for b waits for app"],
        ),
    ];
    let bad_files: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
        (
            "zero",
            vec!["run".into(), "-f".into(), "/dev/zero".into(), "--".into(), "true".into()],
            vec!["/dev/zero is not a regular file"],
        ),
        (
            "big",
            vec!["run".into(), "-f".into(), big.display().to_string(), "--".into(), "true".into()],
            vec!["is larger than 1 MiB"],
        ),
    ];
    let before = (made(), uplinks());
    let mut failures = Vec::new();
    let mut refused = |case: &str, args: &[&str], phrases: &[&str]| {
        let out = nd(args);
        let err = stderr(&out);
        if out.status.code() != Some(1) || !phrases.iter().all(|p| err.contains(p)) {
            failures.push(format!("{case}: exit {:?}: {err}", out.status.code()));
        }
    };
    for (case, network, services, phrases) in &cases {
        let name = format!("bad-{case}");
        let path = write_manifest(&name, &manifest(&name, network, services));
        refused(case, &["run", "-f", path.to_str().unwrap(), "--", "true"], phrases);
        assert_failed_bringup_left_nothing(&name, &before.1);
    }
    let binary = write_manifest("bad-binary", &manifest("bad-binary", "", ""));
    let mut files = bad_files;
    files.push((
        "binary",
        vec!["up".into(), "-f".into(), binary.display().to_string(), "--binary".into(), "tendermint=/bin/true".into()],
        vec!["invalid --binary: 'tendermint=/bin/true'", "--binary goes with --profile"],
    ));
    for (case, args, phrases) in &files {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(case, &args, phrases);
    }
    assert!(failures.is_empty(), "cases that were not refused as they should be:\n{}", failures.join("\n"));
    assert_eq!((made(), uplinks()), before, "a refused bring-up made something");
    std::fs::remove_file(big).unwrap();
}

#[test]
fn bad_specs_from_code_are_refused_and_make_nothing() {
    let sleeper = || ServiceSpec::new("app", "sleep").unwrap().args(["1000"]).unwrap();
    let mut specs: Vec<(&str, NetworkSpec, &str)> = Vec::new();
    specs.push((
        "name",
        NetworkSpec::new("t-bad-name", 1).service(ServiceSpec::new("..", "true").unwrap()),
        "'..': it may not start",
    ));
    let mut tz = NetworkSpec::new("t-bad-tz", 1);
    tz.conditions.clocks.push(("node0".into(), ClockSkew::default().tz("/etc/passwd")));
    specs.push(("tz", tz, "'/etc/passwd' is not a zone"));
    let mut multicast = NetworkSpec::new("t-bad-subnet", 1);
    multicast.subnet = Some("239.1.0.0/24".parse().unwrap());
    specs.push(("subnet", multicast, "multicast"));
    let probe = sleeper().ready(Probe::Http("ftp://{ip}/".parse().unwrap()), std::time::Duration::from_secs(1));
    specs.push(("probe", NetworkSpec::new("t-bad-probe", 1).service(probe), "'ftp://{ip}/' is not a URL to probe"));
    let before = (made(), uplinks());
    for (case, spec, phrase) in specs {
        match Network::up(&spec) {
            Ok(network) => panic!("{case}: came up as {}", network.id()),
            Err(e) => assert!(matches!(e, Error::Invalid { .. }) && e.to_string().contains(phrase), "{case}: {e}"),
        }
        assert_failed_bringup_left_nothing(&spec.name, &before.1);
    }
    assert_eq!((made(), uplinks()), before, "a refused bring-up made something");
}

#[test]
fn a_failed_bind_names_itself_without_spurious_warnings() {
    // A directory bound over a file: the mount fails once the node's namespaces exist.
    let name = "bad-mount";
    let text = manifest(
        name,
        "",
        "[[service]]\nname = \"app\"\ncommand = \"true\"\nbinds = { \"/etc/hostname\" = \"{data}\" }\n",
    );
    let path = write_manifest(name, &text);
    let before = uplinks();
    let out = nd(&["run", "-f", path.to_str().unwrap(), "--", "true"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("bind-mounting") && err.contains("/etc/hostname"), "{err}");
    assert!(!err.contains("WARN"), "a warning beside the error: {err}");
    assert_failed_bringup_left_nothing(name, &before);
}

#[test]
fn a_service_may_wait_for_one_defined_after_it() {
    let app = ServiceSpec::new("app", "sh")
        .unwrap()
        .args(["-c", "test -e {dir}/db-ready || exit 1; exec sleep 1000"])
        .unwrap()
        .after("db");
    let db = ServiceSpec::new("db", "sh")
        .unwrap()
        .args(["-c", "touch {dir}/db-ready && exec python3 -m http.server 8000 --bind {ip}"])
        .unwrap()
        .ready(Probe::Tcp(8000), std::time::Duration::from_secs(10));
    let network = up(&NetworkSpec::new("t-after-later", 2).service(app).service(db));
    network.start().unwrap();
    for node in network.nodes() {
        assert!(node.service("app").unwrap().pid().is_some(), "{}: app did not wait for db", node.name());
    }
    teardown(network);
}

/// Removes a route of table 4242 when dropped (no rule sends traffic to that table).
struct Route(&'static str);

impl Route {
    fn add(prefix: &'static str) -> Route {
        let out = Command::new("ip").args(["route", "add", "blackhole", prefix, "table", "4242"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        Route(prefix)
    }
}

impl Drop for Route {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["route", "del", "blackhole", self.0, "table", "4242"]).output();
    }
}

#[test]
fn the_subnet_picker_sees_every_table_and_short_prefixes() {
    {
        let _taken = Route::add("10.200.0.0/15");
        let network = up(&NetworkSpec::new("t-route-table", 1));
        let subnet = network.subnet();
        assert!(!subnet.overlaps(&"10.200.0.0/15".parse().unwrap()), "picked {subnet}, routed in table 4242");
        teardown(network);
    }
    {
        // IPv6 too: a given prefix inside a route of another table is refused, and with all
        // of fd00::/8 routed no unique local prefix is left to pick.
        let _taken = Route::add("fd00:6e64:77::/48");
        let prefix = Some("fd00:6e64:77:1::/64".parse().unwrap());
        let given = NetworkSpec { ipv6: true, subnet6: prefix, ..NetworkSpec::new("t-route-given6", 1) };
        let err = Network::up(&given).unwrap_err().to_string();
        assert!(err.contains("fd00:6e64:77:1::/64 overlaps fd00:6e64:77::/48"), "{err}");
        let _ula = Route::add("fd00::/8");
        let err = Network::up(&NetworkSpec { ipv6: true, ..NetworkSpec::new("t-route-ula", 1) }).unwrap_err();
        assert!(err.to_string().contains("no free unique local /64"), "{err}");
    }
    let _all = Route::add("10.0.0.0/7");
    let err = Network::up(&NetworkSpec::new("t-route-short", 1)).unwrap_err();
    assert!(err.to_string().contains("no free /24 left in 10.200.0.0-10.255.255.255"), "{err}");
    let given = NetworkSpec { subnet: Some("10.1.2.0/24".parse().unwrap()), ..NetworkSpec::new("t-route-given", 1) };
    let err = Network::up(&given).unwrap_err().to_string();
    assert!(err.contains("10.1.2.0/24 overlaps 10.0.0.0/7"), "{err}");
}

//! Bad input, case by case: each error has the right variant, its message names the cause
//! and the fix, and a bring-up that fails leaves nothing behind (no record, no uplink).

use std::path::Path;

use crate::common::{assert_failed_bringup_left_nothing, teardown, up, uplinks, web_service};
use netdriver::{Error, Network, NetworkSpec, ServiceSpec, Subnet};

/// Asserts that `err` is the variant `is` accepts and that its message holds each of `phrases`.
fn assert_error(err: &Error, is: fn(&Error) -> bool, phrases: &[&str]) {
    assert!(is(err), "unexpected variant: {err:?}");
    let message = err.to_string();
    for phrase in phrases {
        assert!(message.contains(phrase), "{message:?} lacks {phrase:?}");
    }
}

/// Brings up `spec`, which must fail; checks the error as [`assert_error`] does and that
/// the attempt left nothing behind.
fn assert_bringup_fails(spec: &NetworkSpec, is: fn(&Error) -> bool, phrases: &[&str]) {
    let before = uplinks();
    match Network::up(spec) {
        Ok(network) => panic!("bringing up {} succeeded (run {})", spec.name, network.id()),
        Err(e) => assert_error(&e, is, phrases),
    }
    assert_failed_bringup_left_nothing(&spec.name, &before);
}

#[test]
fn bad_specs_fail_bringup_and_leave_nothing() {
    let mut duplicate_nodes = NetworkSpec::new("t-err-dup-nodes", 3);
    duplicate_nodes.nodes[2] = "node0".into();
    assert_bringup_fails(
        &duplicate_nodes,
        |e| matches!(e, Error::DuplicateName { kind: "node", .. }),
        &["duplicate node name 'node0'", "must be unique"],
    );

    let duplicate_services = NetworkSpec::new("t-err-dup-svc", 1).service(web_service()).service(web_service());
    assert_bringup_fails(
        &duplicate_services,
        |e| matches!(e, Error::DuplicateName { kind: "service", .. }),
        &["duplicate service name 'web'", "must be unique"],
    );

    let is_invalid = |e: &Error| matches!(e, Error::Invalid { .. });
    assert_bringup_fails(&NetworkSpec::new("t-err-0", 0), is_invalid, &["0 nodes", "1 to 10000"]);

    let small = NetworkSpec { subnet: Some("10.250.0.0/29".parse().unwrap()), ..NetworkSpec::new("t-err-small", 10) };
    assert_bringup_fails(
        &small,
        |e| matches!(e, Error::Subnet(_)),
        &["10.250.0.0/29 holds 5 nodes", "has 10", "use a shorter prefix"],
    );

    let under_tmp = NetworkSpec { run_root: "/tmp/netdriver".into(), ..NetworkSpec::new("t-err-tmp", 1) };
    assert_bringup_fails(
        &under_tmp,
        is_invalid,
        &["run_root", "/tmp/netdriver is under /tmp", "use e.g. /var/tmp/netdriver"],
    );
}

#[test]
fn missing_binary_fails_bringup_and_leaves_nothing() {
    let ghost = ServiceSpec::new("ghost", "/opt/netdriver/no-such-program").unwrap();
    assert_bringup_fails(
        &NetworkSpec::new("t-err-missing", 2).service(ghost),
        |e| matches!(e, Error::MissingBinary { .. }),
        &["service ghost", "'/opt/netdriver/no-such-program' not found", "install it or give its full path"],
    );
}

#[test]
fn a_program_under_tmp_is_named_as_out_of_the_nodes_sight() {
    // Each node has a /tmp of its own: a program in the host's /tmp is not there.
    let program = std::env::temp_dir().join(format!("netdriver-true-{}", std::process::id()));
    std::fs::copy("/bin/true", &program).unwrap();
    let fix = format!("{} is under /tmp, which each node replaces with its own", program.display());
    let spec =
        NetworkSpec::new("t-err-tmp-program", 1).service(ServiceSpec::new("t", program.to_str().unwrap()).unwrap());
    assert_bringup_fails(&spec, |e| matches!(e, Error::MissingBinary { .. }), &["service t", &fix]);
    let network = up(&NetworkSpec::new("t-err-tmp-exec", 1));
    let err = network.nodes()[0].exec([program.to_str().unwrap()]).unwrap_err().to_string();
    assert!(err.contains("exec on node0") && err.contains(&fix), "{err}");
    teardown(network);
    std::fs::remove_file(program).unwrap();
}

/// A subnet routed to one of the host's own links (not a netdriver uplink), if there is one.
fn host_link_subnet() -> Option<Subnet> {
    let out = std::process::Command::new("ip").args(["-o", "-4", "route"]).output().expect("running ip -o -4 route");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("scope link") && !l.contains(" dev nd"))
        .find_map(|l| l.split_whitespace().next()?.parse().ok())
}

#[test]
fn a_subnet_in_use_is_refused() {
    let a = up(&NetworkSpec::new("t-err-subnet-a", 2));
    let mut taken = vec![a.subnet()];
    // Hosts with only /32 or default routes on their interfaces have none to test with.
    taken.extend(host_link_subnet());
    for subnet in taken {
        let b = NetworkSpec { subnet: Some(subnet), ..NetworkSpec::new("t-err-subnet-b", 2) };
        assert_bringup_fails(
            &b,
            |e| matches!(e, Error::Subnet(_)),
            &[&format!("{subnet} overlaps {subnet}"), "pick another or leave it unset"],
        );
    }
    teardown(a);
}

#[test]
fn unknown_names_and_wrong_states() {
    let network = up(&NetworkSpec::new("t-err-names", 2).service(web_service()));
    let err = network.node("nope").unwrap_err();
    assert_error(
        &err,
        |e| matches!(e, Error::UnknownNode { node, .. } if node == "nope"),
        &["unknown node 'nope'", "node0, node1, or an index below 2"],
    );
    let err = network.node("2").unwrap_err();
    assert_error(&err, |e| matches!(e, Error::UnknownNode { .. }), &["unknown node '2'"]);

    let node = network.node("node1").unwrap();
    let err = node.service("nope").unwrap_err();
    assert_error(&err, |e| matches!(e, Error::UnknownService { .. }), &["node1 has no service 'nope'", "it has: web"]);

    let web = node.service("web").unwrap();
    let err = web.pause().unwrap_err();
    assert_error(&err, |e| matches!(e, Error::State(_)), &["node1/web is not running", "cannot be paused"]);
    teardown(network);
}

#[test]
fn a_bad_manifest_names_the_file_line_and_field() {
    let text = "[network]\nnodes = 3\n\n[[service]]\nname = \"web\"\ncommand = \"python3\"\nready = { tcp = 0 }\n";
    let path = Path::new("/etc/netdriver/bad.toml");
    let err = netdriver::manifest::parse(text, path).unwrap_err();
    assert_error(
        &err,
        |e| matches!(e, Error::Manifest { line: 7, .. }),
        &["/etc/netdriver/bad.toml:7:", "service[0].ready.tcp", "invalid value"],
    );

    let err = netdriver::manifest::load(Path::new("/nonexistent/netdriver.toml")).unwrap_err();
    assert_error(&err, |e| matches!(e, Error::Io { .. }), &["reading manifest /nonexistent/netdriver.toml"]);
}

#[test]
fn a_missing_workdir_is_named() {
    let workdir = "/nonexistent/netdriver-workdir";
    let lost = ServiceSpec { workdir: Some(workdir.parse().unwrap()), ..ServiceSpec::new("lost", "sh").unwrap() };
    let network = up(&NetworkSpec::new("t-err-workdir", 1).service(lost));
    let err = network.nodes()[0].service("lost").unwrap().start().unwrap_err();
    assert!(!matches!(err, Error::MissingBinary { .. }), "blames the program: {err}");
    assert!(err.to_string().contains(workdir), "{err:?} does not name {workdir}");
    teardown(network);
}

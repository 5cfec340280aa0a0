//! `netdriver timeline`: a real run's events drawn as a page, checked as text (its lanes and
//! events, nothing fetched) and as pixels of a screenshot taken by headless Chromium. (Link
//! shaping, which needs netem, is left to the unit tests of the drawing.)

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{assert_no_leftovers, exec_ok, nd, shell_service, stderr, stdout, up, wait_until, web_service};
use netdriver::timeline::{Geometry, LaneBand, PARTITION_COLOR, RUNNING_COLOR};
use netdriver::{ClockSkew, EventKind, NetworkSpec, Offset, Op};

/// Lets a state last long enough to be seen in the picture (nothing is timed).
fn pause() {
    std::thread::sleep(Duration::from_millis(300));
}

/// Brings up three nodes running `web` and `ticker` (which exits with 3 once /tmp/exit
/// exists, and restarts whenever `web` starts afresh), changes everything the timeline
/// draws, and tears the network down. Returns its run directory, kept.
fn eventful_run() -> PathBuf {
    let ticker = shell_service("ticker", "while [ ! -e /tmp/exit ]; do sleep 0.05; done; exit 3").restart_with("web");
    let network = up(&NetworkSpec::new("t-timeline", 3).service(web_service()).service(ticker));
    network.start().expect("starting the services");
    let [node0, node1, node2] = network.nodes() else { panic!("three nodes") };
    pause();
    node1.apply(Op::Stop, Some("web")).unwrap();
    pause();
    node1.apply(Op::Start, Some("web")).unwrap();
    node2.apply(Op::Pause, Some("ticker")).unwrap();
    pause();
    node2.apply(Op::Resume, Some("ticker")).unwrap();
    pause();
    network.partition([vec!["node0"], vec!["node1", "node2"]]).unwrap();
    pause();
    network.block("node1", "node2").unwrap();
    node2.configure_clock(ClockSkew::offset(Offset::ahead(Duration::from_secs(30))), false).unwrap();
    pause();
    network.heal().unwrap();
    exec_ok(node0, &["touch", "/tmp/exit"]);
    let exited = || network.events().unwrap().iter().any(|e| e.kind == EventKind::Exited);
    wait_until("the ticker of node0 exits", Duration::from_secs(10), exited);
    pause();
    node0.apply(Op::Reset, Some("ticker")).unwrap();
    node2.configure_clock(ClockSkew::default(), false).unwrap();
    pause();
    let (id, run_dir) = (network.id().to_string(), network.run_dir().to_path_buf());
    network.down().unwrap_or_else(|e| panic!("tearing down {id}: {e}"));
    assert_no_leftovers(&id);
    run_dir
}

/// Runs `netdriver timeline` with `args`; panics unless it succeeds. Returns what it printed.
fn timeline_cli(args: &[&str]) -> String {
    let out = nd(&[&["timeline"], args].concat());
    assert!(out.status.success(), "netdriver timeline {args:?}: {}", stderr(&out));
    stdout(&out)
}

/// Screenshots `page` with headless Chromium at `width` x `height` into `png`.
fn screenshot(page: &Path, png: &Path, width: u32, height: u32) {
    let profile = png.with_extension("profile");
    let _ = std::fs::remove_dir_all(&profile);
    std::fs::create_dir_all(&profile).unwrap();
    let _ = std::fs::remove_file(png);
    // As root Chromium needs --no-sandbox; without the background flags it reaches for the
    // network and stalls.
    let run = Command::new("timeout")
        .args(["120", "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"])
        .args(["--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"])
        .args(["--force-device-scale-factor=1", "--force-color-profile=srgb"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output();
    let out = match run {
        Ok(out) if out.status.code() == Some(127) => {
            panic!("chromium is missing: install Debian's chromium package (scripts/setup installs it)")
        }
        Ok(out) => out,
        Err(e) => panic!("running timeout chromium: {e}"),
    };
    assert!(png.is_file(), "chromium wrote no screenshot ({}): {}", out.status, stderr(&out));
    std::fs::remove_dir_all(&profile).unwrap();
}

/// The screenshot's pixels as RGB, with its width.
fn pixels(png: &Path) -> (Vec<[u8; 3]>, usize) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = match info.color_type {
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
        other => panic!("a screenshot in {other:?}"),
    };
    let rgb = buf[..info.buffer_size()].chunks(channels).map(|p| [p[0], p[1], p[2]]).collect();
    (rgb, info.width as usize)
}

/// `#rrggbb` as RGB.
fn rgb(hex: &str) -> [u8; 3] {
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).unwrap();
    [byte(1), byte(3), byte(5)]
}

/// How many pixels of `color` the chart part of `band` has.
fn count(image: &(Vec<[u8; 3]>, usize), geo: &Geometry, band: &LaneBand, color: &str) -> usize {
    let (pixels, width) = image;
    let color = rgb(color);
    let rows = band.top.ceil() as usize..band.bottom.floor() as usize;
    let columns = geo.chart_left.ceil() as usize..geo.chart_right.floor() as usize;
    rows.flat_map(|y| columns.clone().map(move |x| y * width + x)).filter(|&i| pixels.get(i) == Some(&color)).count()
}

#[test]
fn a_real_run_is_drawn_with_its_lanes_and_events() {
    let run_dir = eventful_run();
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("timeline");
    std::fs::create_dir_all(&out_dir).unwrap();
    let page = out_dir.join("timeline.html");
    let printed = timeline_cli(&[run_dir.to_str().unwrap(), "-o", page.to_str().unwrap()]);
    assert_eq!(printed.trim(), page.display().to_string());
    let html = std::fs::read_to_string(&page).unwrap();

    for fetch in ["http://", "https://", "<script src", "<link", "@import", "url("] {
        assert!(!html.contains(fetch), "the page would fetch something: it has {fetch:?}");
    }
    for lane in ["network", "node0", "node1", "node2"] {
        assert!(html.contains(&format!("<g class=\"lane\" id=\"lane-{lane}\">")), "no lane {lane}");
    }
    let drawn = [
        "class=\"bar starting\"",
        "class=\"bar running\"",
        "class=\"bar stopped\"",
        "class=\"bar paused\"",
        "class=\"bar exited\"",
        "class=\"span partition\"",
        "class=\"span block\"",
        "class=\"span clock-shift\"",
        "class=\"mark exited\"",
        "class=\"mark restarted\"",
        "class=\"mark reset\"",
        "class=\"mark heal\"",
        "class=\"mark up\"",
        "class=\"mark down\"",
        // Tooltips: the span's label, and each event with who made it and its details.
        "<title>partition: node0 | node1, node2",
        "<title>block: node1 → node2",
        "<title>clock shift: +30s",
        "from: paused node2/ticker\nby library, t = ",
        "exited node0/ticker\nby network, t = ",
        "{&quot;pid&quot;:",
    ];
    for what in drawn {
        assert!(html.contains(what), "the page lacks {what:?}");
    }

    // The default output is RUN_DIR/timeline.html.
    let default = run_dir.join("timeline.html");
    assert_eq!(timeline_cli(&[run_dir.to_str().unwrap()]).trim(), default.display().to_string());
    assert_eq!(std::fs::read_to_string(&default).unwrap(), html);

    let events = netdriver::events::read(&run_dir.join(netdriver::events::FILE)).unwrap();
    let geo = netdriver::timeline::geometry(&events);
    let png = out_dir.join("timeline.png");
    screenshot(&page, &png, geo.width as u32, geo.height.ceil() as u32);
    let image = pixels(&png);
    assert_eq!(image.1, geo.width as usize, "the screenshot's width");
    let band = |name: &str| geo.lanes.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("no band {name}"));
    for node in ["node0", "node1", "node2"] {
        let running = count(&image, &geo, band(node), RUNNING_COLOR);
        assert!(running > 1000, "{node}'s lane shows {running} pixels of running bars");
    }
    let network = band("network");
    let partition = count(&image, &geo, network, PARTITION_COLOR);
    assert!(partition > 500, "the network lane shows {partition} pixels of the partition");
    assert_eq!(count(&image, &geo, network, RUNNING_COLOR), 0, "running bars drawn in the network lane");
    assert_eq!(count(&image, &geo, band("node0"), PARTITION_COLOR), 0, "a partition drawn in node0's lane");
    std::fs::remove_dir_all(&run_dir).unwrap();
}

#[test]
fn a_directory_without_events_is_named_with_the_fix() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("timeline-no-events");
    std::fs::create_dir_all(&dir).unwrap();
    let out = nd(&["timeline", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(message.contains("has no events.jsonl") && message.contains("each run's directory"), "{message}");
    assert!(!dir.join("timeline.html").exists());
}

//! A picture of a run's timeline (`<run_dir>/events.jsonl`): one self-contained HTML page
//! with an SVG, fetching nothing and running no script.
//!
//! The page has a time axis in seconds since bring-up; a `network` lane at the top with the
//! network's one-off events (up, heal, down, ...), its partitions (from a `partition` to the
//! next `heal` or `partition`) and its one-way blocks (from a `block` to the next `heal` or
//! `partition`, which replace every cut); a `nemesis` lane when a fault schedule ran, with the
//! schedule and each fault (`fault_start` to the `fault_end` of the same id); and a lane a
//! node, in the order of their names (`node2` before `node10`), with a row a service whose
//! bars show when it was starting, running, paused, stopped, killed or gone after exiting, a
//! row for its link shaping (a `qos` until the next `qos` or a `qos_cleared` of the node or
//! the network), one for its clock shifts (a `clock` until the next `clock`), and rows for the
//! blocks it sends into. One-off events (`exited`, `restarted`, `reset`, ...) are marks at
//! their time. Hovering over a bar, span or mark shows the events behind it: their kind, node,
//! service, who made them, `t`, wall clock and details (SVG `<title>`s).
//!
//! Lanes are `<g class="lane" id="lane-NAME">`; [`geometry`] says where each one is drawn.

mod labels;
mod layout;
mod svg;

use std::path::Path;

use crate::error::{Error, Result};
use crate::events::{self, Event};
use crate::files;

/// The picture's width in CSS pixels.
pub const WIDTH: f64 = 1400.0;
/// The height of one row of a lane (a service, the shaping of a node, ...).
pub const ROW_HEIGHT: f64 = 24.0;
/// The fill of a running service's bars.
pub const RUNNING_COLOR: &str = "#2e7d32";
/// The fill of a partition's spans.
pub const PARTITION_COLOR: &str = "#7e57c2";

/// Where [`render`] draws things, in CSS pixels from the page's top left corner (the SVG fills
/// the page from there, without margin).
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// The picture's width ([`WIDTH`]).
    pub width: f64,
    /// Its height.
    pub height: f64,
    /// Where time 0 is drawn.
    pub chart_left: f64,
    /// Where the last event's time is drawn.
    pub chart_right: f64,
    /// The lanes, top to bottom.
    pub lanes: Vec<LaneBand>,
}

/// The band of the picture that one lane fills.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneBand {
    /// `network`, `nemesis`, or the node's name; the lane's SVG id is `lane-` and this.
    pub name: String,
    /// Its top edge.
    pub top: f64,
    /// Its bottom edge.
    pub bottom: f64,
}

/// Where [`render`] draws the lanes of `events`.
pub fn geometry(events: &[Event]) -> Geometry {
    svg::geometry(&layout::build(events))
}

/// The HTML page of the timeline `events`, headed `title` (e.g. the run directory's name).
/// A timeline without events gives a page saying so.
pub fn render(events: &[Event], title: &str) -> String {
    let body = if events.is_empty() {
        "<p class=\"empty\">There are no events in this timeline.</p>".to_string()
    } else {
        svg::draw(&layout::build(events), title)
    };
    let title = svg::escape(title);
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>netdriver timeline: {title}</title>\n<style>{}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        svg::STYLE
    )
}

/// Reads `<run_dir>/events.jsonl` and writes its page ([`render`]) to `out` (mode 0644).
pub fn write(run_dir: &Path, out: &Path) -> Result<()> {
    let path = run_dir.join(events::FILE);
    if !run_dir.is_dir() {
        let message = format!(
            "{} is not a directory; give a run's directory, e.g. /var/tmp/netdriver/NAME-ID",
            run_dir.display()
        );
        return Err(Error::invalid("run directory", message));
    }
    if !path.is_file() {
        let message = format!(
            "{} has no {}: netdriver {} and later write one in each run's directory as the network runs; \
             give the directory of such a run",
            run_dir.display(),
            events::FILE,
            env!("CARGO_PKG_VERSION")
        );
        return Err(Error::invalid("run directory", message));
    }
    let events = events::read(&path)?;
    let name = run_dir.file_name().map_or_else(|| run_dir.display().to_string(), |n| n.to_string_lossy().into_owned());
    files::write_file(out, render(&events, &name).as_bytes(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::layout::tests::events;
    use super::*;

    #[test]
    fn a_page_has_its_lanes_and_every_text_escaped() {
        let events = events(&[
            r#"0.5 up - - {"nodes":2}"#,
            "1 started node1 <web&co>",
            r#"2 partition - - {"groups":[["node1"],["node0"]],"note":"</title><script>"}"#,
            "3 reset node1 <web&co>",
        ]);
        let page = render(&events, "run <1>");
        for lane in ["network", "node0", "node1"] {
            assert!(page.contains(&format!("<g class=\"lane\" id=\"lane-{lane}\">")), "no lane {lane}");
        }
        assert!(page.find("id=\"lane-node0\"") < page.find("id=\"lane-node1\""));
        assert!(page.contains("<title>netdriver timeline: run &lt;1&gt;</title>"));
        assert!(page.contains("reset node1/&lt;web&amp;co&gt;"));
        assert!(page.contains("&lt;/title&gt;&lt;script&gt;") && !page.contains("<script"));
        assert!(!page.contains("http://") && !page.contains("https://"));
    }

    #[test]
    fn an_empty_timeline_says_so() {
        let page = render(&[], "empty");
        assert!(page.contains("There are no events in this timeline.") && !page.contains("<svg"));
    }

    #[test]
    fn lane_bands_follow_each_other_a_row_each_and_more() {
        let events = events(&["0 started node0 web", "1 started node0 db", "2 started node1 web"]);
        let geo = geometry(&events);
        let names: Vec<_> = geo.lanes.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["network", "node0", "node1"]);
        let heights: Vec<_> = geo.lanes.iter().map(|l| l.bottom - l.top).collect();
        assert!(heights[1] - heights[0] == ROW_HEIGHT && heights[0] == heights[2], "{heights:?}");
        assert!(geo.lanes.windows(2).all(|w| w[0].bottom == w[1].top));
        assert!(geo.height > geo.lanes[2].bottom && geo.chart_left < geo.chart_right && geo.chart_right < WIDTH);
    }
}

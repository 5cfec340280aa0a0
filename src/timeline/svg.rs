//! Drawing the lanes of [`super::layout`] as inline SVG: where each lane goes, the axis, the
//! bars, spans and marks, and text escaped for XML.

use std::fmt::Write as _;

use super::layout::{Interval, Look, Row, Timeline};
use super::{Geometry, LaneBand, PARTITION_COLOR, ROW_HEIGHT, RUNNING_COLOR, WIDTH};
use crate::events::{Event, EventKind};

/// The page's style sheet: no web font, nothing fetched.
pub(super) const STYLE: &str = "body{margin:0;background:#fff;color:#263238;\
font-family:'DejaVu Sans','Liberation Sans',Arial,sans-serif}\
svg{display:block}svg text{font-family:inherit}.empty{margin:2em;font-size:16px}\
.bar:hover,.span:hover,.mark:hover path{stroke:#000;stroke-width:1.5}.label{pointer-events:none}";

/// Left of the chart: the lanes' names and their rows'.
const GUTTER: f64 = 190.0;
/// Right of the chart.
const RIGHT_MARGIN: f64 = 28.0;
/// Where the first lane begins, below the title, the legend and the axis.
const TOP: f64 = 114.0;
/// Space above and below a lane's rows.
const LANE_PAD: f64 = 5.0;
/// Below the last lane: the axis again.
const FOOTER: f64 = 30.0;
/// Space above and below a bar within its row.
const BAR_INSET: f64 = 4.0;
/// About how wide a character of 11 px text is.
const CHAR_WIDTH: f64 = 6.4;
/// The most characters of a lane's or row's name shown in the gutter.
const NAME_CHARS: usize = 14;

/// A look's fill, its text color, and its name in the legend.
fn style(look: Look) -> (&'static str, &'static str, &'static str) {
    const DARK: &str = "#263238";
    match look {
        Look::Starting => ("#a5d6a7", DARK, "starting"),
        Look::Running => (RUNNING_COLOR, "#fff", "running"),
        Look::Paused => ("#f9a825", DARK, "paused"),
        Look::Stopped => ("#b0bec5", DARK, "stopped"),
        Look::Killed => ("#78909c", "#fff", "killed"),
        Look::Exited => ("#e57373", DARK, "exited"),
        Look::Partition => (PARTITION_COLOR, "#fff", "partition"),
        Look::Block => ("#ec407a", "#fff", "block"),
        Look::Qos => ("#0288d1", "#fff", "shaping"),
        Look::Clock => ("#00897b", "#fff", "clock shift"),
        Look::Schedule => ("#ffe0b2", DARK, "nemesis"),
        Look::Fault => ("#ef6c00", "#fff", "fault"),
    }
}

/// The color of a one-off event's mark.
fn mark_color(kind: EventKind) -> &'static str {
    match kind {
        EventKind::Exited => "#c62828",
        EventKind::Restarted => "#1565c0",
        EventKind::Reset => "#6a1b9a",
        EventKind::Heal => "#558b2f",
        _ => "#37474f",
    }
}

/// `text` with XML's special characters escaped, for text and attribute values alike.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters other than tab and newline are not allowed in XML at all.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// `name` made fit for an id: letters, digits, `-` and `_`, anything else as `_`.
fn id_safe(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// `name` cut to `max` characters, with an ellipsis if it was longer.
fn abridged(name: &str, max: usize) -> String {
    if name.chars().count() <= max {
        name.to_string()
    } else {
        name.chars().take(max - 1).chain(['…']).collect()
    }
}

/// Where the lanes of `timeline` go.
pub(super) fn geometry(timeline: &Timeline<'_>) -> Geometry {
    let mut top = TOP;
    let lanes = timeline
        .lanes
        .iter()
        .map(|lane| {
            let bottom = top + 2.0 * LANE_PAD + lane.rows.len() as f64 * ROW_HEIGHT;
            let band = LaneBand { name: lane.name.clone(), top, bottom };
            top = bottom;
            band
        })
        .collect();
    Geometry { width: WIDTH, height: top + FOOTER, chart_left: GUTTER, chart_right: WIDTH - RIGHT_MARGIN, lanes }
}

/// The time scale: seconds to x.
struct Scale {
    left: f64,
    width: f64,
    /// The time drawn at the right edge.
    span: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        self.left + t.clamp(0.0, self.span) / self.span * self.width
    }

    /// A round step between ticks that gives at most about 12 of them, and its decimals.
    fn step(&self) -> (f64, usize) {
        let raw = self.span / 12.0;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(magnitude * 10.0);
        (step, (-(step.log10().floor())).max(0.0) as usize)
    }
}

/// The SVG of `timeline`, headed `title`.
pub(super) fn draw(timeline: &Timeline<'_>, title: &str) -> String {
    let geo = geometry(timeline);
    let scale = Scale { left: geo.chart_left, width: geo.chart_right - geo.chart_left, span: timeline.end.max(1e-3) };
    let mut out = String::new();
    let (w, h) = (geo.width, geo.height);
    let _ = write!(out, r#"<svg width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">"#);
    let _ = write!(out, "\n<title>netdriver timeline: {}</title>", escape(title));
    header(&mut out, timeline, title);
    out.push_str("\n<g class=\"shades\">");
    for (i, band) in geo.lanes.iter().enumerate() {
        let shade = if i % 2 == 0 { "#f4f6f8" } else { "#fff" };
        let _ = write!(
            out,
            "<rect x=\"0\" y=\"{}\" width=\"{w}\" height=\"{}\" fill=\"{shade}\"/>\
             <line x1=\"0\" x2=\"{w}\" y1=\"{}\" y2=\"{}\" stroke=\"#cfd8dc\"/>",
            band.top,
            band.bottom - band.top,
            band.top,
            band.top
        );
    }
    out.push_str("</g>");
    axis(&mut out, &scale, &geo);
    for (lane, band) in timeline.lanes.iter().zip(&geo.lanes) {
        let _ = write!(
            out,
            "\n<g class=\"lane\" id=\"lane-{}\"><text x=\"16\" y=\"{}\" font-size=\"13\" font-weight=\"bold\">{}</text>",
            id_safe(&lane.name),
            band.top + LANE_PAD + ROW_HEIGHT / 2.0 + 4.5,
            escape(&abridged(&lane.name, NAME_CHARS))
        );
        for (r, row) in lane.rows.iter().enumerate() {
            draw_row(&mut out, &scale, row, band.top + LANE_PAD + r as f64 * ROW_HEIGHT);
        }
        out.push_str("</g>");
    }
    out.push_str("\n</svg>");
    out
}

/// The title, what the timeline holds, and the legend.
fn header(out: &mut String, timeline: &Timeline<'_>, title: &str) {
    let nodes = timeline.lanes.iter().filter(|l| l.name != "network" && l.name != "nemesis").count();
    let (first, last) = &timeline.walls;
    let _ = write!(
        out,
        "\n<text x=\"16\" y=\"30\" font-size=\"18\" font-weight=\"bold\">{}</text>\
         <text x=\"16\" y=\"50\" font-size=\"12\" fill=\"#546e7a\">{nodes} node(s), {} event(s) over {:.3} s, \
         from {} to {} (UTC); hover over anything for its events</text>",
        escape(title),
        timeline.count,
        timeline.end,
        escape(first),
        escape(last)
    );
    let mut x = 16.0;
    let looks = [Look::Starting, Look::Running, Look::Paused, Look::Stopped, Look::Killed, Look::Exited];
    let conditions = [Look::Partition, Look::Block, Look::Qos, Look::Clock, Look::Schedule, Look::Fault];
    for look in looks.into_iter().chain(conditions) {
        let (fill, _, name) = style(look);
        let _ = write!(
            out,
            "<rect x=\"{x}\" y=\"63\" width=\"14\" height=\"12\" rx=\"2\" fill=\"{fill}\"/>\
             <text x=\"{}\" y=\"73.5\" font-size=\"12\">{name}</text>",
            x + 19.0
        );
        x += 19.0 + name.chars().count() as f64 * 7.0 + 16.0;
    }
    let _ = write!(
        out,
        "{}<text x=\"{}\" y=\"73.5\" font-size=\"12\">one-off event (exited, restarted, reset, heal, ...)</text>",
        triangle(x + 6.0, 64.0, mark_color(EventKind::Up)),
        x + 16.0
    );
}

/// Ticks and grid lines, labelled in seconds above the first lane and below the last.
fn axis(out: &mut String, scale: &Scale, geo: &Geometry) {
    let bottom = geo.lanes.last().map_or(TOP, |l| l.bottom);
    let (step, decimals) = scale.step();
    let mut ticks = String::new();
    let mut i = 0.0;
    while i * step <= scale.span * (1.0 + 1e-9) {
        let (t, x) = (i * step, scale.x(i * step));
        let label = format!("{t:.decimals$}s");
        let _ = write!(
            ticks,
            "<line x1=\"{x}\" x2=\"{x}\" y1=\"{}\" y2=\"{bottom}\" stroke=\"#b0bec5\" stroke-dasharray=\"2,3\"/>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{label}</text>\
             <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{label}</text>",
            TOP - 6.0,
            TOP - 10.0,
            bottom + 17.0
        );
        i += 1.0;
    }
    let _ = write!(
        out,
        "\n<g class=\"axis\" font-size=\"11\" fill=\"#546e7a\"><text x=\"16\" y=\"{}\">\
         seconds since bring-up</text>{ticks}</g>",
        TOP - 10.0
    );
}

/// One row: its name in the gutter, its intervals, then its marks on top.
fn draw_row(out: &mut String, scale: &Scale, row: &Row<'_>, top: f64) {
    let _ = write!(
        out,
        "<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#546e7a\" text-anchor=\"end\">{}</text>",
        GUTTER - 12.0,
        top + ROW_HEIGHT / 2.0 + 4.0,
        escape(&abridged(&row.label, NAME_CHARS))
    );
    for interval in &row.intervals {
        draw_interval(out, scale, interval, top);
    }
    for event in &row.marks {
        let (x, color) = (scale.x(event.t), mark_color(event.kind));
        let shape = triangle(x, top + 2.0, color);
        let class = escape(&event.kind.name());
        let _ = write!(out, "<g class=\"mark {class}\">{shape}<title>{}</title></g>", escape(&describe(event)));
    }
}

/// A downward triangle whose top edge is centered at `(x, y)`.
fn triangle(x: f64, y: f64, fill: &str) -> String {
    format!("<path d=\"M{:.1} {y:.1}h11l-5.5 10z\" fill=\"{fill}\" stroke=\"#fff\" stroke-width=\"1\"/>", x - 5.5)
}

/// A bar (a service's state) or a span (a condition), with its label if it fits.
fn draw_interval(out: &mut String, scale: &Scale, interval: &Interval<'_>, top: f64) {
    let (fill, ink, name) = style(interval.look);
    let service_state = matches!(
        interval.look,
        Look::Starting | Look::Running | Look::Paused | Look::Stopped | Look::Killed | Look::Exited
    );
    let class = if service_state { "bar" } else { "span" };
    let x = scale.x(interval.start);
    let width = (scale.x(interval.end) - x).max(1.5);
    let (y, height) = (top + BAR_INSET, ROW_HEIGHT - 2.0 * BAR_INSET);
    let _ = write!(
        out,
        "<rect class=\"{class} {}\" x=\"{x:.2}\" y=\"{y}\" width=\"{width:.2}\" height=\"{height}\" rx=\"2\" \
         fill=\"{fill}\"><title>{}</title></rect>",
        name.replace(' ', "-"),
        escape(&describe_interval(interval, name))
    );
    let label = &interval.label;
    if !label.is_empty() && label.chars().count() as f64 * CHAR_WIDTH + 8.0 <= width {
        let _ = write!(
            out,
            "<text class=\"label\" x=\"{:.2}\" y=\"{}\" font-size=\"11\" fill=\"{ink}\">{}</text>",
            x + 4.0,
            y + height / 2.0 + 4.0,
            escape(label)
        );
    }
}

/// What a tooltip says of an event: kind, node/service, who, when, details.
pub(super) fn describe(event: &Event) -> String {
    let mut text = event.kind.name();
    let place = [event.node.as_deref(), event.service.as_deref()].into_iter().flatten().collect::<Vec<_>>();
    if !place.is_empty() {
        let _ = write!(text, " {}", place.join("/"));
    }
    let _ = write!(text, "\nby {}, t = {:.3} s, {}", event.by, event.t, event.wall);
    if !event.details.is_null() {
        let _ = write!(text, "\n{}", event.details);
    }
    text
}

/// What a tooltip says of an interval: its look and label, its times, and its events.
fn describe_interval(interval: &Interval<'_>, name: &str) -> String {
    let mut text = name.to_string();
    if !interval.label.is_empty() {
        let _ = write!(text, ": {}", interval.label);
    }
    let _ = write!(
        text,
        "\n{:.3} s to {:.3} s ({:.3} s)\n\nfrom: {}\n\nuntil: ",
        interval.start,
        interval.end,
        interval.end - interval.start,
        describe(interval.from)
    );
    match interval.until {
        Some(event) => text.push_str(&describe(event)),
        None => text.push_str("the end of the timeline"),
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_xml() {
        assert_eq!(escape(r#"<a href="x">'&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
        assert_eq!(escape("line\nnext\u{7}"), "line\nnext\u{fffd}");
        assert_eq!(id_safe("node 1/<x>"), "node_1__x_");
        assert_eq!(abridged("a-very-long-service-name", 8), "a-very-…");
        assert_eq!(abridged("web", 8), "web");
    }

    #[test]
    fn ticks_are_round_and_at_most_about_twelve() {
        let scale = |span: f64| Scale { left: 0.0, width: 100.0, span };
        assert_eq!(scale(3.4).step(), (0.5, 1));
        assert_eq!(scale(1.0).step(), (0.1, 1));
        assert_eq!(scale(100.0).step(), (10.0, 0));
        assert_eq!(scale(0.05).step(), (0.005, 3));
        assert_eq!((scale(2.0).x(-1.0), scale(2.0).x(1.0), scale(2.0).x(9.0)), (0.0, 50.0, 100.0));
    }
}

//! From events to lanes: which lane and row each event belongs to, and the intervals that
//! pairs of events bound (a service's states, partitions, blocks, shaping, clock shifts,
//! faults). Pure data; [`super::svg`] draws it.

use std::collections::HashMap;

use serde_json::Value;

use super::labels::{clock_label, fault_label, groups_label, natural_cmp, qos_label, text};
use crate::events::{Event, EventKind};

/// How an interval is drawn: a service's state, or a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Look {
    /// Spawned, its readiness probe not passed yet.
    Starting,
    Running,
    Paused,
    Stopped,
    Killed,
    /// Exited on its own.
    Exited,
    Partition,
    Block,
    Qos,
    Clock,
    /// A fault schedule, from its start to its end.
    Schedule,
    Fault,
}

/// A span of time in one look, with the events that opened and closed it.
#[derive(Debug)]
pub(super) struct Interval<'a> {
    pub(super) start: f64,
    pub(super) end: f64,
    pub(super) look: Look,
    /// What it shows (the groups of a partition, a clock's offset, ...); may be empty.
    pub(super) label: String,
    pub(super) from: &'a Event,
    /// `None`: still on when the timeline ends.
    pub(super) until: Option<&'a Event>,
}

/// One horizontal row of a lane.
#[derive(Debug, Default)]
pub(super) struct Row<'a> {
    pub(super) label: String,
    pub(super) intervals: Vec<Interval<'a>>,
    /// One-off events, drawn at their time.
    pub(super) marks: Vec<&'a Event>,
}

/// The rows of the network, of the fault schedule, or of one node.
#[derive(Debug)]
pub(super) struct Lane<'a> {
    /// `network`, `nemesis`, or the node's name.
    pub(super) name: String,
    pub(super) rows: Vec<Row<'a>>,
}

/// What the picture shows: its lanes, top to bottom, over `[0, end]` seconds.
#[derive(Debug)]
pub(super) struct Timeline<'a> {
    pub(super) lanes: Vec<Lane<'a>>,
    /// The last event's time.
    pub(super) end: f64,
    /// How many events there are.
    pub(super) count: usize,
    /// The wall clock of the first and of the last event.
    pub(super) walls: (String, String),
}

/// An interval opened and not yet closed.
#[derive(Debug)]
struct Open<'a> {
    look: Look,
    label: String,
    from: &'a Event,
}

impl<'a> Open<'a> {
    fn close(self, end: f64, until: Option<&'a Event>) -> Interval<'a> {
        Interval { start: self.from.t, end, look: self.look, label: self.label, from: self.from, until }
    }
}

/// Intervals one after another (a service's states, a node's clock): opening one closes the last.
#[derive(Debug, Default)]
struct Track<'a> {
    done: Vec<Interval<'a>>,
    open: Option<Open<'a>>,
}

impl<'a> Track<'a> {
    /// Closes the open interval at `event` and opens one in `look` from it.
    fn switch(&mut self, event: &'a Event, look: Look, label: String) {
        self.close(event);
        self.open = Some(Open { look, label, from: event });
    }

    /// Closes the open interval at `event`; whether one was open.
    fn close(&mut self, event: &'a Event) -> bool {
        let open = self.open.take();
        let was_open = open.is_some();
        self.done.extend(open.map(|o| o.close(event.t, Some(event))));
        was_open
    }

    fn finish(mut self, end: f64) -> Vec<Interval<'a>> {
        self.done.extend(self.open.take().map(|o| o.close(end, None)));
        self.done
    }
}

/// Intervals that may overlap, each opened and closed by a key (a block's pair, a fault's id).
#[derive(Debug, Default)]
struct Keyed<'a> {
    done: Vec<Interval<'a>>,
    open: Vec<(String, Open<'a>)>,
}

impl<'a> Keyed<'a> {
    /// Opens `key`'s interval unless it is open; whether it opened one.
    fn open(&mut self, key: String, event: &'a Event, look: Look, label: String) -> bool {
        let opens = !self.open.iter().any(|(k, _)| *k == key);
        if opens {
            self.open.push((key, Open { look, label, from: event }));
        }
        opens
    }

    /// Closes `key`'s interval at `event`; whether it was open.
    fn close(&mut self, key: &str, event: &'a Event) -> bool {
        let Some(i) = self.open.iter().position(|(k, _)| k == key) else { return false };
        let (_, open) = self.open.remove(i);
        self.done.push(open.close(event.t, Some(event)));
        true
    }

    fn close_all(&mut self, event: &'a Event) {
        self.done.extend(self.open.drain(..).map(|(_, o)| o.close(event.t, Some(event))));
    }

    /// Rows of intervals that do not overlap, the first labelled `label`; none if empty.
    fn rows(mut self, end: f64, label: &str) -> Vec<Row<'a>> {
        self.done.extend(self.open.drain(..).map(|(_, o)| o.close(end, None)));
        self.done.sort_by(|a, b| a.start.total_cmp(&b.start));
        let mut rows: Vec<Row<'a>> = Vec::new();
        for interval in self.done {
            let free = rows.iter_mut().find(|r| r.intervals.last().is_some_and(|last| last.end <= interval.start));
            if let Some(row) = free {
                row.intervals.push(interval);
            } else {
                let label = if rows.is_empty() { label.to_string() } else { String::new() };
                rows.push(Row { label, intervals: vec![interval], marks: Vec::new() });
            }
        }
        rows
    }
}

/// A service's row.
#[derive(Debug)]
struct ServiceRow<'a> {
    name: String,
    states: Track<'a>,
    marks: Vec<&'a Event>,
}

impl<'a> ServiceRow<'a> {
    /// Its readiness probe passed: from its start to now it was starting. A `ready` after
    /// anything but a start is a mark.
    fn ready(&mut self, event: &'a Event) {
        match self.states.open.take() {
            Some(open) if open.look == Look::Running && open.from.kind == EventKind::Started => {
                self.states.done.push(Open { look: Look::Starting, ..open }.close(event.t, Some(event)));
                self.states.open = Some(Open { look: Look::Running, label: String::new(), from: event });
            }
            other => {
                self.states.open = other;
                self.marks.push(event);
            }
        }
    }
}

#[derive(Debug, Default)]
struct NodeLane<'a> {
    services: Vec<ServiceRow<'a>>,
    qos: Track<'a>,
    clock: Track<'a>,
    blocks: Keyed<'a>,
    /// Marks of the node that name no service.
    marks: Vec<&'a Event>,
}

impl<'a> NodeLane<'a> {
    fn service(&mut self, name: &str) -> &mut ServiceRow<'a> {
        if let Some(i) = self.services.iter().position(|s| s.name == name) {
            return &mut self.services[i];
        }
        self.services.push(ServiceRow { name: name.to_string(), states: Track::default(), marks: Vec::new() });
        self.services.last_mut().expect("just pushed")
    }

    fn rows(self, end: f64) -> Vec<Row<'a>> {
        let mut rows: Vec<Row<'a>> = self
            .services
            .into_iter()
            .map(|s| Row { label: s.name, intervals: s.states.finish(end), marks: s.marks })
            .collect();
        for (label, track) in [("shaping", self.qos), ("clock", self.clock)] {
            let intervals = track.finish(end);
            if !intervals.is_empty() {
                rows.push(Row { label: label.into(), intervals, marks: Vec::new() });
            }
        }
        rows.extend(self.blocks.rows(end, "blocks"));
        with_marks(rows, self.marks)
    }
}

/// `rows` with `marks` on the first row (one made if there is none).
fn with_marks<'a>(mut rows: Vec<Row<'a>>, marks: Vec<&'a Event>) -> Vec<Row<'a>> {
    if rows.is_empty() {
        rows.push(Row { label: "events".into(), ..Row::default() });
    }
    rows[0].marks.extend(marks);
    rows
}

/// What [`build`] gathers as it reads the events.
#[derive(Debug, Default)]
struct Builder<'a> {
    nodes: HashMap<String, NodeLane<'a>>,
    /// Marks of the network lane.
    marks: Vec<&'a Event>,
    partition: Track<'a>,
    blocks: Keyed<'a>,
    /// Whether there was a fault schedule.
    nemesis: bool,
    schedule: Track<'a>,
    schedule_marks: Vec<&'a Event>,
    faults: Keyed<'a>,
}

impl<'a> Builder<'a> {
    fn node(&mut self, name: &str) -> &mut NodeLane<'a> {
        self.nodes.entry(name.to_string()).or_default()
    }

    /// Closes every block (on the network's lane and the senders') at `event`.
    fn unblock(&mut self, event: &'a Event) {
        self.blocks.close_all(event);
        self.nodes.values_mut().for_each(|n| n.blocks.close_all(event));
    }

    fn add(&mut self, event: &'a Event) {
        for name in mentioned_nodes(event) {
            self.node(&name);
        }
        let kind = event.kind;
        match (kind, event.node.as_deref(), event.service.as_deref()) {
            (EventKind::Started | EventKind::Resumed, Some(n), Some(s)) => {
                self.node(n).service(s).states.switch(event, Look::Running, String::new());
            }
            (EventKind::Ready, Some(n), Some(s)) => self.node(n).service(s).ready(event),
            (EventKind::Paused, Some(n), Some(s)) => {
                self.node(n).service(s).states.switch(event, Look::Paused, String::new());
            }
            (EventKind::Stopped | EventKind::Killed | EventKind::Exited, Some(n), Some(s)) => {
                let look = match kind {
                    EventKind::Stopped => Look::Stopped,
                    EventKind::Killed => Look::Killed,
                    _ => Look::Exited,
                };
                let row = self.node(n).service(s);
                row.states.switch(event, look, String::new());
                if kind == EventKind::Exited {
                    row.marks.push(event);
                }
            }
            (EventKind::Partition, _, _) => {
                self.partition.switch(event, Look::Partition, groups_label(&event.details));
                // A partition replaces every cut, blocks included.
                self.unblock(event);
            }
            (EventKind::Block, _, _) => {
                let (from, to) = (text(&event.details["from"]), text(&event.details["to"]));
                let key = format!("{from}\n{to}");
                // A block of a pair already blocked changes nothing: a mark.
                if self.blocks.open(key.clone(), event, Look::Block, format!("{from} → {to}")) {
                    self.node(&from).blocks.open(key, event, Look::Block, format!("→ {to}"));
                } else {
                    self.marks.push(event);
                }
            }
            (EventKind::Heal, _, _) => {
                self.partition.close(event);
                self.unblock(event);
                self.marks.push(event);
            }
            (EventKind::Qos, Some(n), _) => self.node(n).qos.switch(event, Look::Qos, qos_label(&event.details)),
            (EventKind::QosCleared, Some(n), _) => {
                let node = self.node(n);
                if !node.qos.close(event) {
                    node.marks.push(event);
                }
            }
            (EventKind::QosCleared, None, _) => {
                for node in self.nodes.values_mut() {
                    node.qos.close(event);
                }
                self.marks.push(event);
            }
            (EventKind::Clock, Some(n), _) => {
                let node = self.node(n);
                match clock_label(&event.details["skew"]) {
                    Some(label) => node.clock.switch(event, Look::Clock, label),
                    None if node.clock.close(event) => {}
                    None => node.marks.push(event),
                }
            }
            (EventKind::NemesisStart | EventKind::NemesisEnd | EventKind::FaultStart | EventKind::FaultEnd, _, _) => {
                self.fault_event(event);
            }
            // Everything else is a mark: on its service's row, its node's lane, or the network's.
            (_, Some(n), Some(s)) => self.node(n).service(s).marks.push(event),
            (_, Some(n), None) => self.node(n).marks.push(event),
            (_, None, _) => self.marks.push(event),
        }
    }

    /// An event of a fault schedule.
    fn fault_event(&mut self, event: &'a Event) {
        self.nemesis = true;
        let id = event.details["id"].to_string();
        match event.kind {
            EventKind::NemesisStart => {
                let label = format!("seed {}", text(&event.details["seed"]));
                self.schedule.switch(event, Look::Schedule, label);
                self.schedule_marks.push(event);
            }
            EventKind::FaultStart if self.faults.open(id.clone(), event, Look::Fault, fault_label(event)) => {}
            EventKind::FaultEnd if self.faults.close(&id, event) => {}
            _ => {
                if event.kind == EventKind::NemesisEnd {
                    self.schedule.close(event);
                }
                self.schedule_marks.push(event);
            }
        }
    }

    fn lanes(mut self, end: f64) -> Vec<Lane<'a>> {
        let mut network = vec![Row { label: "events".into(), ..Row::default() }];
        let partitions = self.partition.finish(end);
        if !partitions.is_empty() {
            network.push(Row { label: "partition".into(), intervals: partitions, marks: Vec::new() });
        }
        network.extend(self.blocks.rows(end, "blocks"));
        let mut lanes = vec![Lane { name: "network".into(), rows: with_marks(network, self.marks) }];
        if self.nemesis {
            let schedule = self.schedule.finish(end);
            let mut rows = vec![Row { label: "schedule".into(), intervals: schedule, marks: self.schedule_marks }];
            rows.extend(self.faults.rows(end, "faults"));
            lanes.push(Lane { name: "nemesis".into(), rows });
        }
        let mut names: Vec<String> = self.nodes.keys().cloned().collect();
        names.sort_by(|a, b| natural_cmp(a, b));
        for name in names {
            let rows = self.nodes.remove(&name).expect("a listed node").rows(end);
            lanes.push(Lane { name, rows });
        }
        lanes
    }
}

/// The lanes of `events`: the network's, the fault schedule's (if there was one), then one a
/// node in the order of their names (node2 before node10). A timeline that ends without
/// `down` is drawn to its last event.
pub(super) fn build(events: &[Event]) -> Timeline<'_> {
    let mut sorted: Vec<&Event> = events.iter().collect();
    sorted.sort_by(|a, b| a.t.total_cmp(&b.t));
    let end = sorted.last().map_or(0.0, |e| e.t);
    let wall = |e: Option<&&Event>| e.map(|e| e.wall.clone()).unwrap_or_default();
    let walls = (wall(sorted.first()), wall(sorted.last()));
    let count = sorted.len();
    let mut builder = Builder::default();
    for event in sorted {
        builder.add(event);
    }
    Timeline { lanes: builder.lanes(end), end, count, walls }
}

/// The nodes an event names besides its own: a partition's groups, a block's receiver.
fn mentioned_nodes(event: &Event) -> Vec<String> {
    let groups = event.details["groups"].as_array().into_iter().flatten();
    let in_groups = groups.filter_map(Value::as_array).flatten().filter_map(Value::as_str);
    let to = event.details["to"].as_str().filter(|_| event.kind == EventKind::Block);
    in_groups.chain(to).chain(event.node.as_deref()).map(str::to_string).collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::time::Duration;

    use crate::clock::{ClockSkew, Offset};
    use crate::events::parse;

    /// Events from lines of `t kind node service details` (`-` for none).
    pub(in crate::timeline) fn events(lines: &[&str]) -> Vec<Event> {
        let json: Vec<String> = lines
            .iter()
            .map(|line| {
                let mut f = line.splitn(5, ' ');
                let (t, kind, node, service) = (f.next().unwrap(), f.next().unwrap(), f.next(), f.next());
                let field = |name: &str, v: Option<&str>| match v {
                    Some(v) if v != "-" => format!(",\"{name}\":\"{v}\""),
                    _ => String::new(),
                };
                let details = f.next().map_or(String::new(), |d| format!(",\"details\":{d}"));
                let (node, service) = (field("node", node), field("service", service));
                format!("{{\"t\":{t},\"wall\":\"w{t}\",\"kind\":\"{kind}\",\"by\":\"cli\"{node}{service}{details}}}\n")
            })
            .collect();
        parse(&json.concat()).unwrap()
    }

    fn lane<'a>(timeline: &'a Timeline<'a>, name: &str) -> &'a Lane<'a> {
        timeline.lanes.iter().find(|l| l.name == name).unwrap_or_else(|| panic!("no lane {name}"))
    }

    /// A row's intervals as (start, end, look, label).
    fn spans(row: &Row<'_>) -> Vec<(f64, f64, Look, String)> {
        row.intervals.iter().map(|i| (i.start, i.end, i.look, i.label.clone())).collect()
    }

    #[test]
    fn lanes_are_the_network_then_nodes_by_number() {
        let events = events(&[
            "0 up",
            "1 started node10 web",
            "2 started node2 web",
            "3 block - - {\"from\":\"a\",\"to\":\"node1\"}",
        ]);
        let names: Vec<_> = build(&events).lanes.into_iter().map(|l| l.name).collect();
        assert_eq!(names, ["network", "a", "node1", "node2", "node10"]);
    }

    #[test]
    fn a_service_bars_its_states_and_a_second_start_opens_a_new_bar() {
        let events = events(&[
            "0 started node0 web",
            "1 ready node0 web",
            "2 paused node0 web",
            "3 resumed node0 web",
            "4 stopped node0 web",
            "5 started node0 web",
            "6 started node0 web",
            "7 exited node0 web",
            "8 reset node0 web",
        ]);
        let timeline = build(&events);
        let row = &lane(&timeline, "node0").rows[0];
        assert_eq!(row.label, "web");
        let looks: Vec<_> = spans(row).into_iter().map(|(s, e, look, _)| (s, e, look)).collect();
        use Look::*;
        assert_eq!(
            looks,
            [
                (0.0, 1.0, Starting),
                (1.0, 2.0, Running),
                (2.0, 3.0, Paused),
                (3.0, 4.0, Running),
                (4.0, 5.0, Stopped),
                (5.0, 6.0, Running),
                (6.0, 7.0, Running),
                (7.0, 8.0, Exited)
            ]
        );
        let marks: Vec<_> = row.marks.iter().map(|e| e.kind).collect();
        assert_eq!(marks, [EventKind::Exited, EventKind::Reset]);
    }

    #[test]
    fn partitions_and_blocks_pair_with_heal_and_the_next_partition() {
        let events = events(&[
            "0 up",
            r#"1 partition - - {"groups":[["node0"],["node1","node2"]]}"#,
            r#"2 block node0 - {"from":"node0","to":"node1"}"#,
            r#"3 block node2 - {"from":"node2","to":"node0"}"#,
            r#"4 partition - - {"groups":[["node0","node1"],["node2"]]}"#,
            "5 heal",
            r#"6 block node0 - {"from":"node0","to":"node2"}"#,
            "7 down",
        ]);
        let timeline = build(&events);
        let network = lane(&timeline, "network");
        let labels: Vec<_> = network.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["events", "partition", "blocks", ""]);
        let partitions = spans(&network.rows[1]);
        assert_eq!(
            partitions,
            [
                (1.0, 4.0, Look::Partition, "node0 | node1, node2".to_string()),
                (4.0, 5.0, Look::Partition, "node0, node1 | node2".to_string())
            ]
        );
        // Two blocks at once take two rows; the last one lasts to the end of the file.
        let blocks: Vec<_> = network.rows[2..].iter().flat_map(spans).map(|(s, e, _, l)| (s, e, l)).collect();
        assert_eq!(
            blocks,
            [
                (2.0, 4.0, "node0 → node1".into()),
                (6.0, 7.0, "node0 → node2".into()),
                (3.0, 4.0, "node2 → node0".into())
            ]
        );
        let node0 = lane(&timeline, "node0");
        assert_eq!(node0.rows[0].label, "blocks");
        assert_eq!(spans(&node0.rows[0]).iter().map(|s| (s.0, s.1)).collect::<Vec<_>>(), [(2.0, 4.0), (6.0, 7.0)]);
        let marks: Vec<_> = network.rows[0].marks.iter().map(|e| e.kind).collect();
        assert_eq!(marks, [EventKind::Up, EventKind::Heal, EventKind::Down]);
    }

    #[test]
    fn shaping_and_clock_spans_end_where_cleared() {
        let qos = r#"{"target":{"kind":"node","node":"node0","direction":"both"},"qos":{"delay":{"secs":0,"nanos":100000000},"loss":"None","distribution":"Uniform"}}"#;
        let pair = r#"{"target":{"kind":"pair","from":"node1","to":"node0","both_ways":false},"qos":{"delay":{"secs":0,"nanos":0},"loss":{"Random":{"percent":5.0,"correlation":0.0}}}}"#;
        let skew = |s: Offset| serde_json::json!({"skew": ClockSkew::offset(s)});
        let lines = [
            format!("1 qos node0 - {qos}"),
            format!("2 qos node1 - {pair}"),
            "3 qos_cleared node0".into(),
            "4 qos_cleared".into(),
            format!("5 clock node2 - {}", skew(Offset::ahead(Duration::from_secs(30)))),
            format!("6 clock node2 - {}", skew(Offset::ZERO)),
            format!("7 clock node2 - {}", skew(Offset::ZERO)),
        ];
        let events = events(&lines.iter().map(String::as_str).collect::<Vec<_>>());
        let timeline = build(&events);
        assert_eq!(spans(&lane(&timeline, "node0").rows[0]), [(1.0, 3.0, Look::Qos, "delay 100ms".into())]);
        assert_eq!(spans(&lane(&timeline, "node1").rows[0]), [(2.0, 4.0, Look::Qos, "→ node0, loss".into())]);
        let node2 = lane(&timeline, "node2");
        assert_eq!(
            (node2.rows[0].label.as_str(), spans(&node2.rows[0])),
            ("clock", vec![(5.0, 6.0, Look::Clock, "+30s".into())])
        );
        // A setting back to the host's clocks with none shifted is a mark.
        assert_eq!(node2.rows[0].marks.iter().map(|e| e.t).collect::<Vec<_>>(), [7.0]);
    }

    #[test]
    fn faults_pair_by_id_and_a_file_may_end_anywhere() {
        let events = events(&[
            r#"0 nemesis_start - - {"seed":7,"faults":["kill"],"length":10}"#,
            r#"1 fault_start node1 - {"id":1,"fault":"kill","hold":2}"#,
            r#"2 fault_start - - {"id":2,"fault":{"kind":"partition"},"hold":2}"#,
            r#"3 fault_end node1 - {"id":1,"fault":"kill"}"#,
            r#"4 fault_end - - {"id":9,"fault":"kill"}"#,
            r#"4.5 fault_start - - {"id":2,"fault":"pause","hold":2}"#,
            "5 started node0 web",
        ]);
        let timeline = build(&events);
        let nemesis = lane(&timeline, "nemesis");
        assert_eq!(spans(&nemesis.rows[0]), [(0.0, 5.0, Look::Schedule, "seed 7".into())]);
        let faults: Vec<_> = nemesis.rows[1..].iter().flat_map(spans).map(|(s, e, _, l)| (s, e, l)).collect();
        assert_eq!(faults, [(1.0, 3.0, "kill node1".into()), (2.0, 5.0, "partition".into())]);
        // An end without a start, and a start of an id already going, are marks.
        assert_eq!(nemesis.rows[0].marks.iter().map(|e| e.t).collect::<Vec<_>>(), [0.0, 4.0, 4.5]);
        assert!(nemesis.rows[1].intervals[0].until.is_some() && nemesis.rows[2].intervals[0].until.is_none());
        assert_eq!(
            timeline.lanes.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["network", "nemesis", "node0", "node1"]
        );
    }
}

//! What the picture writes: the labels of spans (a partition's groups, a clock's shifts, a
//! link's shaping, a fault), read from events' details, and the order of node names.

use std::cmp::Ordering;
use std::time::Duration;

use serde_json::Value;

use crate::clock::Offset;
use crate::events::Event;
use crate::units::format_duration;

/// A JSON value as plain text: a string without quotes, anything else as JSON.
pub(super) fn text(value: &Value) -> String {
    value.as_str().map_or_else(|| value.to_string(), str::to_string)
}

/// A partition's groups: `node0, node1 | node2`.
pub(super) fn groups_label(details: &Value) -> String {
    let groups = details["groups"].as_array().into_iter().flatten().filter_map(Value::as_array);
    let names = groups.map(|g| g.iter().map(text).collect::<Vec<_>>().join(", ")).collect::<Vec<_>>();
    if names.is_empty() {
        "partition".into()
    } else {
        names.join(" | ")
    }
}

/// Whether a JSON value says "nothing": null, false, 0, an empty text or one without a digit
/// (`None`, `Uniform`), a text whose number is 0 (`+0ppm`), or only such parts.
fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => {
            let number: String = s.chars().filter(|c| c.is_ascii_digit() || *c == '.').collect();
            number.is_empty() || number.parse::<f64>().is_ok_and(|n| n == 0.0)
        }
        Value::Array(items) => items.iter().all(is_zero),
        Value::Object(fields) => fields.values().all(is_zero),
    }
}

/// A duration as serde writes one (`{"secs": 1, "nanos": 0}`).
fn duration(value: &Value) -> Option<Duration> {
    Some(Duration::new(value["secs"].as_u64()?, u32::try_from(value["nanos"].as_u64()?).ok()?))
}

/// What a `qos` event set: its pair, if one, and the settings that are not zero.
pub(super) fn qos_label(details: &Value) -> String {
    let target = &details["target"];
    let mut parts: Vec<String> = Vec::new();
    if target["kind"] == "pair" {
        parts.push(format!("→ {}", text(&target["to"])));
    }
    for (name, value) in details["qos"].as_object().into_iter().flatten().filter(|(_, v)| !is_zero(v)) {
        parts.push(duration(value).map_or_else(|| name.clone(), |d| format!("{name} {}", format_duration(d))));
    }
    parts.join(", ")
}

/// A clock setting's shifts (`+30s`, `wall +1h, drift +200ppm`), or `None` for the host's clocks.
pub(super) fn clock_label(skew: &Value) -> Option<String> {
    let shift = |clock: &str| skew[clock].as_str().and_then(|s| s.parse::<Offset>().ok()).unwrap_or_default();
    let offsets = [("wall", shift("realtime")), ("monotonic", shift("monotonic")), ("boottime", shift("boottime"))];
    let mut parts: Vec<String> = if offsets.iter().all(|(_, o)| *o == offsets[0].1) {
        offsets.iter().take(1).filter(|(_, o)| *o != Offset::ZERO).map(|(_, o)| o.to_string()).collect()
    } else {
        offsets.iter().filter(|(_, o)| *o != Offset::ZERO).map(|(name, o)| format!("{name} {o}")).collect()
    };
    parts.extend(skew["drift"].as_str().filter(|d| !is_zero(&Value::from(*d))).map(|d| format!("drift {d}")));
    parts.extend(skew["tz"].as_str().map(|tz| format!("tz {tz}")));
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A fault's name (its text, or the `kind` of its object) and its node.
pub(super) fn fault_label(event: &Event) -> String {
    let fault = &event.details["fault"];
    let name = ["kind", "type", "name"].iter().find_map(|k| fault[k].as_str()).or(fault.as_str()).unwrap_or("fault");
    event.node.as_ref().map_or_else(|| name.to_string(), |node| format!("{name} {node}"))
}

/// Orders names as people count: `node2` before `node10`, runs of digits by their value.
pub(super) fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (ca, cb) = (chunks(a), chunks(b));
    for (x, y) in ca.iter().zip(&cb) {
        let order = match (x.as_bytes()[0].is_ascii_digit(), y.as_bytes()[0].is_ascii_digit()) {
            (true, true) => {
                let (tx, ty) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
                tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty)).then_with(|| x.len().cmp(&y.len()))
            }
            _ => x.cmp(y),
        };
        if order != Ordering::Equal {
            return order;
        }
    }
    ca.len().cmp(&cb.len())
}

/// `s` cut into runs of digits and runs of anything else.
fn chunks(s: &str) -> Vec<&str> {
    let mut chunks = Vec::new();
    let mut start = 0;
    for (i, c) in s.char_indices().skip(1) {
        let before = s[..i].chars().next_back().is_some_and(|p| p.is_ascii_digit());
        if before != c.is_ascii_digit() {
            chunks.push(&s[start..i]);
            start = i;
        }
    }
    if start < s.len() {
        chunks.push(&s[start..]);
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_as_people_count() {
        let mut sorted = ["n10", "n9", "n009", "b", "a2b", "a10", "a2a", "n", "node1x"];
        sorted.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(sorted, ["a2a", "a2b", "a10", "b", "n", "n9", "n009", "n10", "node1x"]);
    }

    #[test]
    fn clock_labels_name_what_is_shifted() {
        let skew = |json: &str| clock_label(&serde_json::from_str(json).unwrap());
        assert_eq!(skew(r#"{"realtime":"-1h","drift":"+0ppm"}"#), Some("wall -1h".into()));
        assert_eq!(skew(r#"{"realtime":"+30s","monotonic":"+30s","boottime":"+30s"}"#), Some("+30s".into()));
        assert_eq!(skew(r#"{"drift":"+200ppm","tz":"Asia/Tokyo"}"#), Some("drift +200ppm, tz Asia/Tokyo".into()));
        assert_eq!(skew(r#"{"realtime":"+0","drift":"-0ppb","tz":null}"#), None);
    }

    #[test]
    fn zero_values_are_told_apart() {
        for zero in ["null", "false", "0", "0.0", "\"None\"", "\"+0ppm\"", "{\"secs\":0,\"nanos\":0}", "[]"] {
            assert!(is_zero(&serde_json::from_str(zero).unwrap()), "{zero}");
        }
        for not in ["true", "1", "\"+1ppm\"", "{\"secs\":0,\"nanos\":5}", "{\"Random\":{\"percent\":1.0}}"] {
            assert!(!is_zero(&serde_json::from_str(not).unwrap()), "{not}");
        }
    }
}

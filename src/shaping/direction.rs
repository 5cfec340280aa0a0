//! Which of a node's traffic a shaping applies to.

use crate::error::{Error, Result};

/// Which of a node's traffic a [`Qos`](super::Qos) shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Everything the node sends.
    Send,
    /// Everything the node receives.
    Receive,
    /// Both.
    Both,
}

impl Direction {
    /// The direction's name, as the manifest, the CLI and the control socket spell it.
    pub fn name(self) -> &'static str {
        match self {
            Direction::Send => "send",
            Direction::Receive => "receive",
            Direction::Both => "both",
        }
    }

    /// Whether it covers what the node sends.
    pub fn sends(self) -> bool {
        matches!(self, Direction::Send | Direction::Both)
    }

    /// Whether it covers what the node receives.
    pub fn receives(self) -> bool {
        matches!(self, Direction::Receive | Direction::Both)
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Direction {
    type Err = Error;
    fn from_str(s: &str) -> Result<Direction> {
        let all = [Direction::Send, Direction::Receive, Direction::Both];
        all.into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| Error::invalid("qos direction", format!("'{s}' (allowed: send, receive, both)")))
    }
}

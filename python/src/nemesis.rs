//! The binding's `Nemesis` class: a fault schedule running in the background on a network,
//! stopped (every fault undone) by `stop()` or when it ends; its plan and history as JSON.

use std::sync::{Arc, Mutex};

use netdriver::nemesis::{self, History, NemesisSpec, Running};
use pyo3::prelude::*;

use crate::errors::{IntoPy, InvalidError, StateError};

/// The spec of a schedule from its JSON (durations as text, ranges as `"2s..5s"`), or the
/// network's own when `None`.
pub(crate) fn spec_of(network: &netdriver::Network, json: Option<&str>) -> PyResult<NemesisSpec> {
    match json {
        Some(json) => {
            let spec: NemesisSpec =
                serde_json::from_str(json).map_err(|e| InvalidError::new_err(format!("invalid nemesis: {e}")))?;
            spec.validate().py_err()?;
            Ok(spec)
        }
        None => network.nemesis_spec().cloned().ok_or_else(|| {
            InvalidError::new_err(
                "invalid nemesis: this network's manifest has no [nemesis] table: give a schedule, \
                 e.g. nemesis(seed=7, faults=['kill', 'pause', 'partition'])",
            )
        }),
    }
}

/// The plan of `spec` on `network`, one line a fault; nothing is applied.
pub(crate) fn plan(network: &netdriver::Network, spec: &NemesisSpec) -> PyResult<String> {
    nemesis::check(network, spec).py_err().map(|plan| plan.to_string())
}

/// A schedule started on a network.
#[pyclass(module = "netdriver._netdriver", frozen)]
pub(crate) struct Nemesis {
    plan: String,
    running: Mutex<Option<Running>>,
    /// The history once it ended.
    ended: Mutex<Option<History>>,
}

impl Nemesis {
    pub(crate) fn start(network: Arc<netdriver::Network>, spec: NemesisSpec) -> PyResult<Nemesis> {
        let running = nemesis::start(network, spec).py_err()?;
        Ok(Nemesis { plan: running.plan().to_string(), running: Mutex::new(Some(running)), ended: Mutex::new(None) })
    }

    /// Ends the schedule with `end` (stop or wait), once; the history as JSON.
    fn end(&self, py: Python<'_>, end: fn(Running) -> netdriver::Result<History>) -> PyResult<String> {
        let running = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(running) = running {
            let history = py.detach(move || end(running));
            let history = match history {
                Ok(history) => history,
                Err(e) => return Err(StateError::new_err(e.to_string())),
            };
            *self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(history);
        }
        self.history()
    }
}

#[pymethods]
impl Nemesis {
    /// The plan being run, one line a fault.
    fn plan(&self) -> String {
        self.plan.clone()
    }

    /// What the schedule did so far, as JSON.
    fn history(&self) -> PyResult<String> {
        let ended = self.ended.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let history = match ended {
            Some(history) => history,
            None => self
                .running
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .as_ref()
                .map(Running::history)
                .unwrap_or_default(),
        };
        Ok(serde_json::to_string(&history).expect("a history serializes"))
    }

    /// Whether the schedule is over.
    fn finished(&self) -> bool {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_ref().is_none_or(Running::is_finished)
    }

    /// Stops the schedule now, every fault undone; the history as JSON.
    fn stop(&self, py: Python<'_>) -> PyResult<String> {
        self.end(py, Running::stop)
    }

    /// Waits for the schedule's end; the history as JSON.
    fn wait(&self, py: Python<'_>) -> PyResult<String> {
        self.end(py, Running::wait)
    }
}

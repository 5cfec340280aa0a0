//! `netdriver._netdriver`: the Python extension module over the netdriver Rust library.
//!
//! A thin translation: one class, [`network::Network`], over a [`netdriver::Network`] and its
//! profile, and one exception class per [`netdriver::Error`] variant ([`errors`]). Every call
//! that can block (bring-up, service operations, readiness waits, link shaping, teardown)
//! runs with the Python thread detached, so other Python threads go on meanwhile. The friendly
//! API is the pure-Python `netdriver` package around it.

// PyO3 hands every argument over by value: taking a `Vec` or a `HashMap` by reference is not
// an option for a `#[pymethods]` function.
#![allow(clippy::needless_pass_by_value)]

mod errors;
mod nemesis;
mod network;

use pyo3::prelude::*;

/// Runs this process as a network's clock supervisor (`python -m netdriver._supervise`, which
/// netdriver starts with the supervisor's socket on descriptor 3); never returns.
#[pyfunction]
fn _supervise() {
    netdriver::wallclock::supervise()
}

/// The events of the timeline in `run_dir` (`events.jsonl`), each as its JSON line.
#[pyfunction]
fn read_events(run_dir: std::path::PathBuf) -> PyResult<Vec<String>> {
    let mut lines = Vec::new();
    netdriver::events::watch(&run_dir.join(netdriver::events::FILE), false, |_, line| lines.push(line.to_string()))
        .map_err(errors::to_py)?;
    Ok(lines)
}

/// Writes the picture of the run in `run_dir` (its timeline as an HTML page with an SVG) to
/// `out`.
#[pyfunction]
fn write_timeline(run_dir: std::path::PathBuf, out: std::path::PathBuf) -> PyResult<()> {
    netdriver::timeline::write(&run_dir, &out).map_err(errors::to_py)
}

/// The extension module.
#[pymodule]
fn _netdriver(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<network::Network>()?;
    m.add_class::<nemesis::Nemesis>()?;
    m.add_function(wrap_pyfunction!(_supervise, m)?)?;
    m.add_function(wrap_pyfunction!(read_events, m)?)?;
    m.add_function(wrap_pyfunction!(write_timeline, m)?)?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

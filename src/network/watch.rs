//! Noticing what services do on their own: a thread that looks at every service's state a few
//! times a second, so that one that exits (or is killed by something else) is on the timeline
//! when it happens, not when someone next asks.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::node::Node;
use crate::service::Service;

/// The watching thread; stopped and joined on drop.
#[derive(Debug)]
pub(super) struct Watcher {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Watches every service of `nodes`: every 200 ms, and 20 µs more a service, so that a
    /// large network's look costs at most a tenth of a core.
    pub(super) fn start(nodes: &[Node]) -> Watcher {
        let services: Vec<Arc<Service>> = nodes.iter().flat_map(|n| n.services().iter().cloned()).collect();
        let every = Duration::from_millis(200) + Duration::from_micros(20) * services.len() as u32;
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("netdriver-watch".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    for service in &services {
                        // Looking is enough: an exit found is recorded there.
                        service.state();
                    }
                }
            })
            .ok();
        Watcher { stop: Some(stop), thread }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

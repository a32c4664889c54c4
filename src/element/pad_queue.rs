//! The bounded queue between the worker and one src pad's streaming thread (`output.rs`).

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard};

/// Items per pad before the producer waits (back-pressure). Preroll needs only one.
const CAPACITY: usize = 4;

pub enum PadItem {
    Buffer(gst::Buffer),
    Event(gst::Event),
}

#[derive(Default)]
struct Inner {
    items: VecDeque<PadItem>,
    flushing: bool,
}

/// The queue in front of one src pad.
#[derive(Default)]
pub struct PadQueue {
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl PadQueue {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an item, waiting while the queue is full. Returns false when flushing.
    pub fn push(&self, item: PadItem) -> bool {
        let mut inner = self.lock();
        while inner.items.len() >= CAPACITY && !inner.flushing {
            inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
        }
        if inner.flushing {
            return false;
        }
        inner.items.push_back(item);
        self.changed.notify_all();
        true
    }

    /// Takes the next item, waiting for one; None when flushing.
    pub fn pop(&self) -> Option<PadItem> {
        let mut inner = self.lock();
        loop {
            if inner.flushing {
                return None;
            }
            if let Some(item) = inner.items.pop_front() {
                self.changed.notify_all();
                return Some(item);
            }
            inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Flushing drops what is queued and wakes everybody waiting.
    pub fn set_flushing(&self, flushing: bool) {
        let mut inner = self.lock();
        inner.flushing = flushing;
        if flushing {
            inner.items.clear();
        }
        self.changed.notify_all();
    }
}

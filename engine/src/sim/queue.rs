//! The event queue: events ordered by virtual time, ties broken by the
//! order they were scheduled in, so a run is deterministic.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::wire::NodeId;

use super::envelope::Envelope;
use super::fault::Fault;

/// Something that happens at a virtual time.
#[derive(Debug)]
pub(super) enum Event {
    /// A message arrives.
    Deliver(Envelope),
    /// A replica's loop turn for the inputs that arrived.
    Turn { node: NodeId, incarnation: u64 },
    /// A replica's periodic tick (a turn that also schedules the next tick).
    Tick { node: NodeId, incarnation: u64 },
    /// A replica's disk finished syncing its group write in flight.
    Synced { node: NodeId, incarnation: u64 },
    /// A client starts its next operation.
    ClientStart { client: usize },
    /// A client's timeout or backoff ends.
    ClientWake {
        client: usize,
        operation: u64,
        attempt: u32,
    },
    /// A fault fires (scripted or drawn by the fault generator).
    Fault(Fault),
    /// The fault generator draws its next fault.
    NextRandomFault,
    /// The fault phase ends at the latest now.
    FaultPhaseDeadline,
    /// A write must have committed since the faults healed.
    LivenessDeadline,
    /// A crash waiting for a write stops waiting.
    CrashDuringWriteDeadline,
}

/// One queued event.
#[derive(Debug)]
struct Scheduled {
    time_ns: u64,
    order: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Scheduled) -> bool {
        (self.time_ns, self.order) == (other.time_ns, other.order)
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Scheduled) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    /// Reversed, so the max-heap pops the earliest event first.
    fn cmp(&self, other: &Scheduled) -> Ordering {
        (other.time_ns, other.order).cmp(&(self.time_ns, self.order))
    }
}

/// Events by (time, scheduling order).
#[derive(Debug, Default)]
pub(super) struct EventQueue {
    heap: BinaryHeap<Scheduled>,
    scheduled_count: u64,
}

impl EventQueue {
    /// Queues `event` at `time_ns`.
    pub(super) fn push(&mut self, time_ns: u64, event: Event) {
        let order = self.scheduled_count;
        self.scheduled_count += 1;
        self.heap.push(Scheduled {
            time_ns,
            order,
            event,
        });
    }

    /// The earliest event and its time.
    pub(super) fn pop(&mut self) -> Option<(u64, Event)> {
        self.heap
            .pop()
            .map(|scheduled| (scheduled.time_ns, scheduled.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_order() {
        let mut queue = EventQueue::default();
        queue.push(5, Event::ClientStart { client: 1 });
        queue.push(3, Event::ClientStart { client: 2 });
        queue.push(5, Event::ClientStart { client: 3 });
        let clients: Vec<(u64, usize)> = std::iter::from_fn(|| queue.pop())
            .map(|(time, event)| match event {
                Event::ClientStart { client } => (time, client),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(clients, vec![(3, 2), (5, 1), (5, 3)]);
    }
}

//! Lowe's event list: the call and return events of the operations not yet
//! linearized, in time order, in a doubly linked list that lifts an
//! operation out in O(1) and puts it back in O(1) when the search backtracks.
//!
//! Invariants:
//! - Event 0 is the head sentinel; the list is circular through it.
//! - Events are linked in order of (time, calls before returns, operation
//!   index), minus the lifted operations.
//! - Lifts are undone in reverse order (the search's stack discipline),
//!   which is what lets [`EventList::unlift`] restore the exact links.

use super::register::KeyOperation;

/// What an event marks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum EventKind {
    /// The sentinel before the first event and after the last.
    Head,
    /// An operation's invoke.
    Call,
    /// An operation's completion.
    Return,
}

/// One event, linked to its neighbours still in the list.
#[derive(Debug)]
pub(super) struct Event {
    /// What the event marks.
    pub(super) kind: EventKind,
    /// When, in virtual nanoseconds (0 for the head).
    pub(super) time_ns: u64,
    /// Index into the operations the list was built from (0 for the head).
    pub(super) operation: usize,
    previous: usize,
    next: usize,
}

/// The event list; see the module docs.
pub(super) struct EventList {
    events: Vec<Event>,
    return_of: Vec<usize>,
}

/// The index of the head sentinel.
pub(super) const HEAD: usize = 0;

impl EventList {
    /// The list of every operation's call and return event.
    pub(super) fn new(operations: &[KeyOperation<'_>]) -> EventList {
        let mut order = Vec::with_capacity(operations.len() * 2);
        for (operation, entry) in operations.iter().enumerate() {
            order.push((entry.operation.invoke_ns, EventKind::Call, operation));
            order.push((entry.operation.complete_ns, EventKind::Return, operation));
        }
        // Calls before returns at equal times: an operation that completes
        // at the instant another is invoked is concurrent with it.
        order.sort_by_key(|&(time_ns, kind, operation)| {
            (time_ns, kind == EventKind::Return, operation)
        });
        let count = order.len() + 1;
        let mut events = Vec::with_capacity(count);
        events.push(Event {
            kind: EventKind::Head,
            time_ns: 0,
            operation: 0,
            previous: count - 1,
            next: 1 % count,
        });
        let mut return_of = vec![HEAD; operations.len()];
        for (position, (time_ns, kind, operation)) in order.into_iter().enumerate() {
            let event = position + 1;
            if kind == EventKind::Return {
                return_of[operation] = event;
            }
            events.push(Event {
                kind,
                time_ns,
                operation,
                previous: position,
                next: (event + 1) % count,
            });
        }
        assert!(
            return_of.iter().all(|event| *event != HEAD),
            "every operation has a return event"
        );
        EventList { events, return_of }
    }

    /// The event at an index.
    pub(super) fn event(&self, event: usize) -> &Event {
        &self.events[event]
    }

    /// The index of the event after `event` in the list ([`HEAD`] after the
    /// last). For a lifted event, the one after it when it was lifted.
    pub(super) fn next(&self, event: usize) -> usize {
        self.events[event].next
    }

    /// Removes a call event and its operation's return event.
    pub(super) fn lift(&mut self, call: usize) {
        assert_eq!(
            self.events[call].kind,
            EventKind::Call,
            "only a call is lifted"
        );
        let return_event = self.return_of[self.events[call].operation];
        self.unlink(call);
        self.unlink(return_event);
    }

    /// Undoes the latest [`EventList::lift`] still in effect, of `call`.
    pub(super) fn unlift(&mut self, call: usize) {
        assert_eq!(
            self.events[call].kind,
            EventKind::Call,
            "only a call is unlifted"
        );
        let return_event = self.return_of[self.events[call].operation];
        self.relink(return_event);
        self.relink(call);
    }

    fn unlink(&mut self, event: usize) {
        let (previous, next) = (self.events[event].previous, self.events[event].next);
        self.events[previous].next = next;
        self.events[next].previous = previous;
    }

    fn relink(&mut self, event: usize) {
        let (previous, next) = (self.events[event].previous, self.events[event].next);
        assert!(
            self.events[previous].next == next && self.events[next].previous == previous,
            "an event is relinked where it was unlinked"
        );
        self.events[previous].next = event;
        self.events[next].previous = event;
    }
}

#[cfg(test)]
mod tests {
    use super::{EventKind, EventList, HEAD};
    use crate::check::history::{Operation, OperationKind, Outcome, Output};
    use crate::check::register::{KeyOperation, RegisterStep, ValueId};

    fn operation(invoke_ns: u64, complete_ns: u64) -> Operation {
        Operation {
            client: 1,
            kind: OperationKind::Delete,
            key: "k".to_owned(),
            value: None,
            expected: None,
            output: Output::None,
            invoke_ns,
            complete_ns,
            outcome: Outcome::Ok,
        }
    }

    fn walk(list: &EventList) -> Vec<(EventKind, usize)> {
        let mut seen = Vec::new();
        let mut event = list.next(HEAD);
        while event != HEAD {
            seen.push((list.event(event).kind, list.event(event).operation));
            event = list.next(event);
        }
        seen
    }

    #[test]
    fn orders_by_time_with_calls_first_and_lifts_reversibly() {
        let operations = [operation(10, 20), operation(0, 10), operation(5, 30)];
        let step = RegisterStep::Write {
            written: ValueId::ABSENT,
        };
        let entries: Vec<KeyOperation<'_>> = operations
            .iter()
            .map(|operation| KeyOperation { operation, step })
            .collect();
        let mut list = EventList::new(&entries);
        let (call, done) = (EventKind::Call, EventKind::Return);
        let full = vec![
            (call, 1),
            (call, 2),
            (call, 0),
            (done, 1),
            (done, 0),
            (done, 2),
        ];
        assert_eq!(walk(&list), full);
        let call_of = |list: &EventList, wanted: usize| {
            let mut event = list.next(HEAD);
            while list.event(event).operation != wanted || list.event(event).kind != EventKind::Call
            {
                event = list.next(event);
            }
            event
        };
        let (first, second) = (call_of(&list, 1), call_of(&list, 0));
        list.lift(first);
        list.lift(second);
        assert_eq!(walk(&list), vec![(call, 2), (done, 2)]);
        list.unlift(second);
        list.unlift(first);
        assert_eq!(walk(&list), full);
    }
}

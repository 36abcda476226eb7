//! The run's trace: the last events, kept as small values and formatted
//! only when a report asks, so tracing costs little on the hot path.

use std::collections::VecDeque;
use std::fmt;

use crate::paxos::Role;
use crate::wire::{Ballot, Message, NodeId, Slot};

use super::fault::Fault;

/// The gist of a replica message: its kind, ballot and slot range.
#[derive(Clone, Copy, Debug)]
pub(super) struct MessageGist {
    kind: &'static str,
    ballot: Ballot,
    slot: Slot,
    count: u64,
}

impl MessageGist {
    /// Summarises `message`.
    pub(super) fn of(message: &Message) -> MessageGist {
        let gist = |kind, ballot, slot, count| MessageGist {
            kind,
            ballot,
            slot,
            count,
        };
        match message {
            Message::Prepare { ballot, from_slot } => gist("prepare", *ballot, *from_slot, 0),
            Message::Promise {
                ballot,
                from_slot,
                accepted,
                ..
            } => gist("promise", *ballot, *from_slot, accepted.len() as u64),
            Message::Reject { ballot, promised } => {
                gist("reject", *ballot, Slot(promised.round), 0)
            }
            Message::Accept {
                ballot,
                first_slot,
                batches,
                ..
            } => gist("accept", *ballot, *first_slot, batches.len() as u64),
            Message::Accepted {
                ballot,
                first_slot,
                slot_count,
                ..
            } => gist("accepted", *ballot, *first_slot, *slot_count),
            Message::Heartbeat {
                ballot,
                commit_point,
                ..
            } => gist("heartbeat", *ballot, *commit_point, 0),
            Message::HeartbeatAck {
                ballot,
                commit_point,
                ..
            } => gist("heartbeat-ack", *ballot, *commit_point, 0),
            Message::Chosen {
                ballot,
                first_slot,
                batches,
                ..
            } => gist("chosen", *ballot, *first_slot, batches.len() as u64),
            Message::CatchUp { commit_point } => gist("catch-up", Ballot::ZERO, *commit_point, 0),
            Message::InstallSnapshot { ballot, snapshot } => {
                gist("install-snapshot", *ballot, snapshot.slot, 0)
            }
            Message::RecoveryQuery {
                fence, from_slot, ..
            } => gist("recovery-query", *fence, *from_slot, 0),
            Message::RecoveryInfo {
                promised, accepted, ..
            } => gist("recovery-info", *promised, Slot(0), accepted.len() as u64),
        }
    }
}

impl fmt::Display for MessageGist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.kind, self.ballot, self.slot)?;
        if self.count > 0 {
            write!(f, "+{}", self.count)?;
        }
        Ok(())
    }
}

/// One traced event.
#[derive(Clone, Debug)]
pub(super) enum TraceEvent {
    /// A replica message was delivered.
    Delivered {
        from: NodeId,
        to: NodeId,
        gist: MessageGist,
    },
    /// A replica changed role.
    Role {
        node: NodeId,
        role: Role,
        promised: Ballot,
    },
    /// A replica applied a committed slot.
    Applied {
        node: NodeId,
        slot: Slot,
        commands: usize,
    },
    /// A replica proposed a batch of client commands.
    Proposed { node: NodeId, commands: usize },
    /// A fault fired (with the replicas it resolved to).
    Fault { fault: Fault, nodes: Vec<NodeId> },
    /// A replica crashed and lost or kept unsynced items.
    Crashed {
        node: NodeId,
        kept: usize,
        lost: usize,
        torn: bool,
        corrupt: bool,
    },
    /// A replica restarted from its disk.
    Restarted {
        node: NodeId,
        damaged: bool,
        records: usize,
    },
    /// A client completed an operation.
    ClientDone { client: usize, description: String },
    /// Something the checks found.
    Violation { description: String },
}

impl fmt::Display for TraceEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceEvent::Delivered { from, to, gist } => write!(f, "{from}->{to} {gist}"),
            TraceEvent::Role {
                node,
                role,
                promised,
            } => write!(f, "{node} is {role:?} (promised {promised})"),
            TraceEvent::Applied {
                node,
                slot,
                commands,
            } => write!(f, "{node} applied {slot} ({commands} commands)"),
            TraceEvent::Proposed { node, commands } => {
                write!(f, "{node} proposed {commands} commands")
            }
            TraceEvent::Fault { fault, nodes } => write!(f, "fault {fault:?} on {nodes:?}"),
            TraceEvent::Crashed {
                node,
                kept,
                lost,
                torn,
                corrupt,
            } => write!(
                f,
                "{node} crashed: unsynced kept {kept} lost {lost} torn {torn} corrupt {corrupt}"
            ),
            TraceEvent::Restarted {
                node,
                damaged,
                records,
            } => write!(f, "{node} restarted: {records} records, damaged {damaged}"),
            TraceEvent::ClientDone {
                client,
                description,
            } => write!(f, "client {client}: {description}"),
            TraceEvent::Violation { description } => write!(f, "VIOLATION {description}"),
        }
    }
}

/// The ring of the last `entries_max` events.
#[derive(Debug)]
pub(super) struct Trace {
    entries: VecDeque<(u64, TraceEvent)>,
    entries_max: usize,
}

impl Trace {
    /// A trace that keeps the last `entries_max` events.
    pub(super) fn new(entries_max: usize) -> Trace {
        Trace {
            entries: VecDeque::new(),
            entries_max,
        }
    }

    /// Records `event` at virtual time `time_ns`, forgetting the oldest.
    pub(super) fn record(&mut self, time_ns: u64, event: TraceEvent) {
        if self.entries_max == 0 {
            return;
        }
        if self.entries.len() == self.entries_max {
            self.entries.pop_front();
        }
        self.entries.push_back((time_ns, event));
    }

    /// The events as short lines, oldest first.
    pub(super) fn lines(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|(time_ns, event)| format!("{:>7.3}s {event}", *time_ns as f64 / 1e9))
            .collect()
    }
}

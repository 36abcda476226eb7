//! Draining a replica's `Ready`, step by step as the driver's contract in
//! [`crate::paxos`] says: send, persist, hold, restore, apply, serve reads,
//! and snapshot now and then.

use crate::paxos::{Committed, ReadError, Ready};
use crate::sm::StateMachine;
use crate::wire::{NodeId, Slot, Snapshot};

use super::disk::MemoryDisk;
use super::envelope::ReplyBody;
use super::node::{reply, send_all, LiveNode, TurnContext};
use super::report::ViolationKind;
use super::trace::TraceEvent;

/// `ready()` is called until it is empty; applying can add a snapshot and
/// a snapshot adds a persist item, so a few rounds always suffice.
const DRAIN_ROUNDS_MAX: usize = 8;

impl<M: StateMachine> LiveNode<M> {
    /// Drains `ready()` until the replica has nothing more to hand out.
    ///
    /// # Panics
    /// When the replica keeps producing outputs without new inputs.
    pub(super) fn drain(
        &mut self,
        id: NodeId,
        disk: &mut MemoryDisk,
        snapshot_interval: u64,
        context: &mut TurnContext<'_>,
    ) {
        for _ in 0..DRAIN_ROUNDS_MAX {
            let ready = self.replica.ready();
            if ready.is_empty() {
                return;
            }
            self.handle_ready(id, disk, ready, context);
            self.maybe_snapshot(id, snapshot_interval, context);
        }
        panic!("{id}'s replica kept handing out outputs for {DRAIN_ROUNDS_MAX} rounds");
    }

    fn handle_ready(
        &mut self,
        id: NodeId,
        disk: &mut MemoryDisk,
        ready: Ready,
        context: &mut TurnContext<'_>,
    ) {
        let Ready {
            messages_now,
            messages_after_persist,
            persist,
            persist_seq,
            snapshot_to_restore,
            committed,
            reads_ready,
            reads_failed,
        } = ready;
        send_all(context, id, messages_now);
        if !persist.is_empty() {
            disk.write(persist_seq, persist);
        }
        if !messages_after_persist.is_empty() {
            if disk.durable_seq() >= persist_seq {
                send_all(context, id, messages_after_persist);
            } else {
                self.held.push_back((persist_seq, messages_after_persist));
            }
        }
        if let Some(snapshot) = snapshot_to_restore {
            self.restore(id, &snapshot, context);
        }
        for entry in committed {
            self.apply(id, entry, context);
        }
        for read in reads_ready {
            if let Some(pending) = self.reads.remove(&read.read_id) {
                self.reads_unapplied.push((read.read_slot, pending));
            }
        }
        for (read_id, error) in reads_failed {
            let Some(pending) = self.reads.remove(&read_id) else {
                continue;
            };
            let body = match error {
                ReadError::NotLeader { leader_hint } => ReplyBody::Redirect(leader_hint),
                _ => ReplyBody::Busy,
            };
            reply(context, pending.request, body);
        }
        self.serve_reads(context);
    }

    fn restore(&mut self, id: NodeId, snapshot: &Snapshot, context: &mut TurnContext<'_>) {
        let applied = self.store.applied_slot();
        if snapshot.slot < applied {
            let description = format!(
                "{id} was told to restore a snapshot at {} after applying {applied}",
                snapshot.slot
            );
            context
                .checker
                .violation(ViolationKind::ApplyOrder, context.now_ns, description);
            return;
        }
        if let Err(reason) = self.store.restore(snapshot) {
            let description = format!(
                "{id} could not restore the snapshot at {}: {reason}",
                snapshot.slot
            );
            context
                .checker
                .violation(ViolationKind::Divergence, context.now_ns, description);
            return;
        }
        self.last_snapshot_slot = snapshot.slot;
        context.stats.snapshots_restored += 1;
    }

    fn apply(&mut self, id: NodeId, entry: Committed, context: &mut TurnContext<'_>) {
        let Committed { slot, batch } = entry;
        if let Some(description) = context.checker.on_commit(context.now_ns, id, slot, &batch) {
            context
                .trace
                .record(context.now_ns, TraceEvent::Violation { description });
        }
        let expected = self.store.applied_slot().next();
        if slot != expected {
            let description = format!(
                "{id} was handed {slot} to apply, but the next slot to apply is {expected}"
            );
            context
                .checker
                .violation(ViolationKind::ApplyOrder, context.now_ns, description);
            return;
        }
        let outcomes = self.store.apply(slot, &batch);
        context
            .checker
            .on_apply(context.now_ns, id, slot, &outcomes);
        context.trace.record(
            context.now_ns,
            TraceEvent::Applied {
                node: id,
                slot,
                commands: outcomes.len(),
            },
        );
        for outcome in outcomes {
            let Some(requests) = self.waiting.remove(&(outcome.client_id, outcome.seq)) else {
                continue;
            };
            for request in requests {
                let body = ReplyBody::Written(outcome.result.clone());
                reply(context, request, body);
            }
        }
    }

    /// Serves every released read whose read slot the store has applied.
    fn serve_reads(&mut self, context: &mut TurnContext<'_>) {
        if self.reads_unapplied.is_empty() {
            return;
        }
        let applied = self.store.applied_slot();
        let (servable, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.reads_unapplied)
            .into_iter()
            .partition(|(read_slot, _)| *read_slot <= applied);
        self.reads_unapplied = waiting;
        for (_, pending) in servable {
            let answer = self.store.query(&pending.query);
            context.stats.reads_served += 1;
            reply(context, pending.request, ReplyBody::Read(answer));
        }
    }

    /// Every `snapshot_interval` applied slots: snapshot the store and hand
    /// the snapshot to the replica, which persists it and compacts its log.
    fn maybe_snapshot(
        &mut self,
        id: NodeId,
        snapshot_interval: u64,
        context: &mut TurnContext<'_>,
    ) {
        let applied = self.store.applied_slot();
        if applied.0 < self.last_snapshot_slot.0 + snapshot_interval.max(1) {
            return;
        }
        if applied > self.replica.commit_point() || applied <= self.replica.snapshot_slot() {
            return;
        }
        let snapshot = self.store.snapshot();
        context.checker.on_snapshot(context.now_ns, id, &snapshot);
        context.stats.snapshots_taken += 1;
        self.last_snapshot_slot = Slot(applied.0);
        self.replica.on_snapshot(snapshot);
    }
}

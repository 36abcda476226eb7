//! Plausibility checks on peer messages, before they reach the protocol.
//!
//! A message that is a valid wire value can still carry numbers no correct
//! peer sends. Such a message is dropped whole, as if the network had lost
//! it: the replica's arithmetic on protocol numbers never overflows on a
//! peer's word.
//!
//! Invariants:
//! - Every slot in a message that reaches the protocol is below
//!   [`SLOT_CEILING`] (an accept's or catch-up's last slot too), so the
//!   replica's `Slot::next` and window and catch-up sums cannot overflow.
//! - Every ballot in a message that reaches the protocol has a round below
//!   [`ROUND_CEILING`], so the promised and seen ballots stay below it and
//!   a new candidacy's or fence's round (one above them) cannot overflow.
//! - A prepare, accept or heartbeat reaches the protocol only from the
//!   owner of its ballot, and a recovery query only from the owner of its
//!   fence: only a ballot's owner speaks in it, so one ballot never carries
//!   two values for a slot because another peer spoke in its name.

use synod_net::wire::{AcceptedEntry, Ballot, Message, NodeId, Slot};

/// No correct replica reaches this slot (a slot a nanosecond for a century
/// is below 2^62): a message naming a slot at or above it is dropped.
pub(super) const SLOT_CEILING: u64 = 1 << 62;

/// No correct replica reaches this round (one election a nanosecond for a
/// century is below 2^62): a message naming a ballot at or above it is dropped.
pub(super) const ROUND_CEILING: u64 = 1 << 62;

fn slot_ok(slot: Slot) -> bool {
    slot.0 < SLOT_CEILING
}

/// `count` consecutive slots from `first` all lie below the ceiling.
fn run_ok(first: Slot, count: usize) -> bool {
    u64::try_from(count)
        .ok()
        .and_then(|count| first.0.checked_add(count))
        .is_some_and(|end| end <= SLOT_CEILING)
}

fn entries_ok(entries: &[AcceptedEntry]) -> bool {
    entries.iter().all(|entry| slot_ok(entry.slot))
}

/// True when every slot `message` names is plausible.
pub(super) fn slots_plausible(message: &Message) -> bool {
    match message {
        Message::Prepare { from_slot, .. } => slot_ok(*from_slot),
        Message::Promise {
            from_slot,
            accepted,
            commit_point,
            snapshot_slot,
            ..
        } => {
            slot_ok(*from_slot)
                && entries_ok(accepted)
                && slot_ok(*commit_point)
                && slot_ok(*snapshot_slot)
        }
        Message::Reject { .. } => true,
        Message::Accept {
            first_slot,
            batches,
            commit_point,
            ..
        }
        | Message::Chosen {
            first_slot,
            batches,
            commit_point,
            ..
        } => run_ok(*first_slot, batches.len()) && slot_ok(*commit_point),
        Message::Accepted {
            first_slot,
            commit_point,
            ..
        } => slot_ok(*first_slot) && slot_ok(*commit_point),
        Message::Heartbeat { commit_point, .. }
        | Message::HeartbeatAck { commit_point, .. }
        | Message::CatchUp { commit_point } => slot_ok(*commit_point),
        Message::InstallSnapshot { snapshot, .. } => slot_ok(snapshot.slot),
        Message::RecoveryQuery { from_slot, .. } => slot_ok(*from_slot),
        Message::RecoveryInfo {
            accepted,
            commit_point,
            compacted_through,
            ..
        } => entries_ok(accepted) && slot_ok(*commit_point) && slot_ok(*compacted_through),
    }
}

fn ballot_ok(ballot: Ballot) -> bool {
    ballot.round < ROUND_CEILING
}

fn entry_ballots_ok(entries: &[AcceptedEntry]) -> bool {
    entries.iter().all(|entry| ballot_ok(entry.ballot))
}

/// True when every ballot `message` names is plausible.
pub(super) fn ballots_plausible(message: &Message) -> bool {
    match message {
        Message::Prepare { ballot, .. }
        | Message::Accept { ballot, .. }
        | Message::Accepted { ballot, .. }
        | Message::Heartbeat { ballot, .. }
        | Message::HeartbeatAck { ballot, .. }
        | Message::Chosen { ballot, .. }
        | Message::InstallSnapshot { ballot, .. } => ballot_ok(*ballot),
        Message::Promise {
            ballot, accepted, ..
        } => ballot_ok(*ballot) && entry_ballots_ok(accepted),
        Message::Reject { ballot, promised } => ballot_ok(*ballot) && ballot_ok(*promised),
        Message::CatchUp { .. } => true,
        Message::RecoveryQuery { fence, .. } => ballot_ok(*fence),
        Message::RecoveryInfo {
            promised, accepted, ..
        } => ballot_ok(*promised) && entry_ballots_ok(accepted),
    }
}

/// True unless `message` speaks in a ballot that `from` does not own.
pub(super) fn sent_by_ballot_owner(from: NodeId, message: &Message) -> bool {
    match message {
        Message::Prepare { ballot, .. }
        | Message::Accept { ballot, .. }
        | Message::Heartbeat { ballot, .. } => ballot.node == from,
        Message::RecoveryQuery { fence, .. } => fence.node == from,
        _ => true,
    }
}

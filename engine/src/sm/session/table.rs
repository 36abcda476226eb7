//! The session table: per client, an "acknowledged below" mark, the time of
//! its last command on the log's clock, and the results of the sequence
//! numbers at or above the mark that were applied.
//!
//! Invariants:
//! - The activity index holds exactly one entry per session, equal to that
//!   session's (last active time, client id).
//! - The clock never goes backwards, and no session was active after it.
//! - The table never holds more than `sessions_max` sessions.
//! - A session's mark is at least 1 (sequence number 0 only opens) and only
//!   rises; every remembered result's sequence number is at or above the
//!   mark and below mark + `window_seq_count` when it is stored.

use std::collections::{BTreeMap, BTreeSet};

use super::SessionConfig;
use crate::sm::codec::{Reader, Writer};
use crate::sm::SnapshotError;
use crate::wire::{ClientId, Seq};

/// The mark a new session starts with: nothing below the first command's
/// sequence number (1) is waiting for an answer.
const MARK_INITIAL: Seq = Seq(1);
/// An encoded session is at least its id, mark, last active time and count.
const SESSION_BYTES_MIN: usize = 32;
/// An encoded result is at least its sequence number and an empty string.
const RESULT_BYTES_MIN: usize = 16;

/// One client's session.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(super) struct Session {
    /// Every sequence number below this one has been answered to the client.
    acknowledged_below: Seq,
    /// The log's clock at the session's last command.
    last_active_ns: u64,
    /// The first result of every applied sequence number at or above the mark.
    results: BTreeMap<Seq, Vec<u8>>,
}

/// What the table says about one command of a known session.
pub(super) enum Decision {
    /// Below the mark: answered to the client already and forgotten.
    AlreadyAcknowledged,
    /// Applied before; this is its first result.
    Remembered(Vec<u8>),
    /// Too far above the mark.
    WindowExceeded,
    /// Not applied yet, and inside the window: apply it.
    Fresh,
}

impl Session {
    fn new(last_active_ns: u64) -> Session {
        Session {
            acknowledged_below: MARK_INITIAL,
            last_active_ns,
            results: BTreeMap::new(),
        }
    }

    /// Raises the mark to `acknowledged_below` (never lowers it) and forgets
    /// the results below it.
    pub(super) fn acknowledge_below(&mut self, acknowledged_below: Seq) {
        if acknowledged_below > self.acknowledged_below {
            self.acknowledged_below = acknowledged_below;
            self.results = self.results.split_off(&acknowledged_below);
        }
        assert!(
            self.results
                .keys()
                .next()
                .is_none_or(|first| *first >= self.acknowledged_below),
            "no result below the mark is remembered"
        );
    }

    /// Classifies a command with sequence number `seq` (not 0).
    pub(super) fn decide(&self, seq: Seq, window_seq_count: u64) -> Decision {
        assert!(
            seq != Seq(0),
            "sequence number 0 opens a session; it is never decided"
        );
        if seq < self.acknowledged_below {
            Decision::AlreadyAcknowledged
        } else if let Some(result) = self.results.get(&seq) {
            Decision::Remembered(result.clone())
        } else if seq.0 - self.acknowledged_below.0 >= window_seq_count {
            Decision::WindowExceeded
        } else {
            Decision::Fresh
        }
    }

    /// The result a retry of `seq` gets without going through the log, if
    /// the table already decides it.
    pub(super) fn cached(&self, seq: Seq) -> Option<Result<Vec<u8>, super::SessionError>> {
        if seq < self.acknowledged_below {
            Some(Err(super::SessionError::AlreadyAcknowledged))
        } else {
            self.results.get(&seq).map(|result| Ok(result.clone()))
        }
    }
}

/// Every open session, indexed by client id and by activity.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub(super) struct SessionTable {
    /// The log's clock: the highest batch timestamp applied so far.
    clock_ns: u64,
    sessions: BTreeMap<ClientId, Session>,
    /// (last active time, client id) of every session: the first entry is
    /// the least recently active one, ties broken by client id.
    by_activity: BTreeSet<(u64, ClientId)>,
}

impl SessionTable {
    /// The log's clock.
    pub(super) fn clock_ns(&self) -> u64 {
        self.clock_ns
    }

    /// The number of open sessions.
    pub(super) fn len(&self) -> usize {
        assert_eq!(
            self.sessions.len(),
            self.by_activity.len(),
            "one activity entry per session"
        );
        self.sessions.len()
    }

    /// The session of `client_id`, if open.
    pub(super) fn session(&self, client_id: ClientId) -> Option<&Session> {
        self.sessions.get(&client_id)
    }

    /// The session of `client_id`, if open, to change its mark.
    pub(super) fn session_mut(&mut self, client_id: ClientId) -> Option<&mut Session> {
        self.sessions.get_mut(&client_id)
    }

    /// Moves the clock to a batch's timestamp unless the clock is already
    /// past it (a new leader's clock may lag the old one's).
    pub(super) fn advance_clock(&mut self, proposed_at_ns: u64) {
        let previous_ns = self.clock_ns;
        self.clock_ns = self.clock_ns.max(proposed_at_ns);
        assert!(
            self.clock_ns >= previous_ns,
            "the clock never goes backwards"
        );
    }

    /// Removes every session idle for longer than `ttl_ns` on the clock.
    pub(super) fn expire(&mut self, ttl_ns: u64) {
        while let Some(&(last_active_ns, client_id)) = self.by_activity.first() {
            if last_active_ns.saturating_add(ttl_ns) >= self.clock_ns {
                break;
            }
            self.remove(last_active_ns, client_id);
        }
    }

    fn remove(&mut self, last_active_ns: u64, client_id: ClientId) {
        let removed = self.by_activity.remove(&(last_active_ns, client_id));
        assert!(removed, "the activity index names only open sessions");
        let session = self.sessions.remove(&client_id);
        assert!(
            session.is_some_and(|session| session.last_active_ns == last_active_ns),
            "the activity index matches the session"
        );
    }

    /// Opens a session for `client_id`, or touches it if it is open. When the
    /// table is full, the least recently active session (ties: the lowest
    /// client id) is evicted first.
    pub(super) fn open(&mut self, client_id: ClientId, sessions_max: usize) {
        if self.sessions.contains_key(&client_id) {
            self.touch(client_id);
            return;
        }
        if self.len() >= sessions_max {
            let &(last_active_ns, evicted) = self
                .by_activity
                .first()
                .expect("a full table with sessions_max >= 1 is not empty");
            self.remove(last_active_ns, evicted);
        }
        self.sessions.insert(client_id, Session::new(self.clock_ns));
        self.by_activity.insert((self.clock_ns, client_id));
        assert!(
            self.len() <= sessions_max,
            "the table holds at most sessions_max sessions"
        );
    }

    /// Marks `client_id`'s session active now.
    pub(super) fn touch(&mut self, client_id: ClientId) {
        let clock_ns = self.clock_ns;
        let session = self
            .sessions
            .get_mut(&client_id)
            .expect("only an open session is touched");
        assert!(
            session.last_active_ns <= clock_ns,
            "no session was active after the clock"
        );
        let removed = self
            .by_activity
            .remove(&(session.last_active_ns, client_id));
        assert!(removed, "the activity index holds every session");
        session.last_active_ns = clock_ns;
        self.by_activity.insert((clock_ns, client_id));
    }

    /// Stores the first result of `seq`, which must be inside the window.
    /// `replace` allows overwriting a stored result (only the simulator's
    /// deliberate bug does that).
    pub(super) fn remember(
        &mut self,
        client_id: ClientId,
        seq: Seq,
        result: Vec<u8>,
        window_seq_count: u64,
        replace: bool,
    ) {
        let session = self
            .sessions
            .get_mut(&client_id)
            .expect("only an open session remembers");
        assert!(
            seq >= session.acknowledged_below,
            "a result below the mark is never stored"
        );
        assert!(
            seq.0 - session.acknowledged_below.0 < window_seq_count,
            "a result outside the window is never stored"
        );
        let previous = session.results.insert(seq, result);
        assert!(
            previous.is_none() || replace,
            "a sequence number is applied once"
        );
    }

    /// Appends the table to a snapshot.
    pub(super) fn encode(&self, writer: &mut Writer) {
        writer.u64(self.clock_ns);
        writer.length(self.len());
        for (client_id, session) in &self.sessions {
            writer.u64(client_id.0);
            writer.u64(session.acknowledged_below.0);
            writer.u64(session.last_active_ns);
            writer.length(session.results.len());
            for (seq, result) in &session.results {
                writer.u64(seq.0);
                writer.bytes(result);
            }
        }
    }

    /// Reads a table that [`SessionTable::encode`] wrote, checking every
    /// invariant, including that `config` could have produced it.
    pub(super) fn decode(
        reader: &mut Reader<'_>,
        config: &SessionConfig,
    ) -> Result<SessionTable, SnapshotError> {
        let mut table = SessionTable {
            clock_ns: reader.u64()?,
            ..SessionTable::default()
        };
        let session_count = reader.count(SESSION_BYTES_MIN)?;
        if session_count > config.sessions_max {
            return Err(malformed("more sessions than this replica's sessions_max"));
        }
        for _ in 0..session_count {
            let client_id = ClientId(reader.u64()?);
            if table
                .sessions
                .last_key_value()
                .is_some_and(|(last, _)| *last >= client_id)
            {
                return Err(malformed("client ids not in strictly ascending order"));
            }
            let session = decode_session(reader, config, table.clock_ns)?;
            table
                .by_activity
                .insert((session.last_active_ns, client_id));
            table.sessions.insert(client_id, session);
        }
        assert_eq!(
            table.len(),
            session_count,
            "client ids were checked to be distinct"
        );
        Ok(table)
    }
}

fn malformed(reason: &str) -> SnapshotError {
    SnapshotError::Malformed {
        reason: reason.to_owned(),
    }
}

fn decode_session(
    reader: &mut Reader<'_>,
    config: &SessionConfig,
    clock_ns: u64,
) -> Result<Session, SnapshotError> {
    let acknowledged_below = Seq(reader.u64()?);
    if acknowledged_below < MARK_INITIAL {
        return Err(malformed("a session's mark is below 1"));
    }
    let last_active_ns = reader.u64()?;
    if last_active_ns > clock_ns {
        return Err(malformed("a session was active after the clock"));
    }
    let result_count = reader.count(RESULT_BYTES_MIN)?;
    let mut results = BTreeMap::new();
    for _ in 0..result_count {
        let seq = Seq(reader.u64()?);
        if seq < acknowledged_below || seq.0 - acknowledged_below.0 >= config.window_seq_count {
            return Err(malformed("a result outside its session's window"));
        }
        if results
            .last_key_value()
            .is_some_and(|(last, _)| *last >= seq)
        {
            return Err(malformed(
                "sequence numbers not in strictly ascending order",
            ));
        }
        results.insert(seq, reader.bytes()?.to_vec());
    }
    Ok(Session {
        acknowledged_below,
        last_active_ns,
        results,
    })
}

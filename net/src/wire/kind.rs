//! Frame kinds: one number per message type, in ranges kept for each layer.
//!
//! | range      | owner                                                    |
//! |------------|----------------------------------------------------------|
//! | 0          | never valid (a zeroed header is not a frame)             |
//! | 1..=12     | replica messages ([`super::Message`] variants)           |
//! | 13..=31    | reserved: later replica messages (membership, transfer)  |
//! | 32, 33     | [`super::ClientRequest`], [`super::ClientResponse`]      |
//! | 34..=63    | reserved: client layers (kv, lock, stream, RESP bridge)  |
//! | 64         | [`super::Hello`], the first frame on every connection    |
//! | 65..=95    | reserved: connection control (redirect, goodbye)         |
//! | 96..=255   | reserved: later protocol versions                        |

/// The kind of a frame's body.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
#[repr(u8)]
#[non_exhaustive]
pub enum Kind {
    /// [`super::Message::Prepare`].
    Prepare = 1,
    /// [`super::Message::Promise`].
    Promise = 2,
    /// [`super::Message::Reject`].
    Reject = 3,
    /// [`super::Message::Accept`].
    Accept = 4,
    /// [`super::Message::Accepted`].
    Accepted = 5,
    /// [`super::Message::Heartbeat`].
    Heartbeat = 6,
    /// [`super::Message::HeartbeatAck`].
    HeartbeatAck = 7,
    /// [`super::Message::Chosen`].
    Chosen = 8,
    /// [`super::Message::CatchUp`].
    CatchUp = 9,
    /// [`super::Message::InstallSnapshot`].
    InstallSnapshot = 10,
    /// [`super::Message::RecoveryQuery`].
    RecoveryQuery = 11,
    /// [`super::Message::RecoveryInfo`].
    RecoveryInfo = 12,
    /// [`super::ClientRequest`].
    ClientRequest = 32,
    /// [`super::ClientResponse`].
    ClientResponse = 33,
    /// [`super::Hello`].
    Hello = 64,
}

impl Kind {
    /// Every kind in use, in number order.
    pub const ALL: [Kind; 15] = [
        Kind::Prepare,
        Kind::Promise,
        Kind::Reject,
        Kind::Accept,
        Kind::Accepted,
        Kind::Heartbeat,
        Kind::HeartbeatAck,
        Kind::Chosen,
        Kind::CatchUp,
        Kind::InstallSnapshot,
        Kind::RecoveryQuery,
        Kind::RecoveryInfo,
        Kind::ClientRequest,
        Kind::ClientResponse,
        Kind::Hello,
    ];

    /// The kind with this number, or `None` for a reserved or unknown number.
    #[must_use]
    pub fn from_number(number: u8) -> Option<Kind> {
        Kind::ALL
            .iter()
            .copied()
            .find(|kind| kind.number() == number)
    }

    /// The kind's number on the wire.
    #[must_use]
    pub fn number(self) -> u8 {
        self as u8
    }

    /// True for the replica's messages (kinds 1..=31).
    #[must_use]
    pub fn is_replica(self) -> bool {
        (1..=31).contains(&self.number())
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    #[test]
    fn numbers_round_trip_and_reserved_numbers_are_unknown() {
        for kind in Kind::ALL {
            assert_eq!(Kind::from_number(kind.number()), Some(kind));
        }
        for number in [0u8, 13, 31, 34, 63, 65, 95, 96, 255] {
            assert_eq!(Kind::from_number(number), None);
        }
    }
}

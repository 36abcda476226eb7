//! Transports: move frames between this node and its peers and clients.
//!
//! Two back ends offer one interface ([`Transport`]): [`uring`] (io_uring,
//! preparing its operations for a ring the caller owns, plus a standalone
//! driver) and [`portable`] (non-blocking sockets and epoll). [`open`] picks
//! io_uring when the kernel allows it and says once which one runs.
//!
//! The model: a node dials each peer ([`Transport::connect`]) and keeps that
//! outbound connection up, reconnecting with backoff; it accepts inbound
//! connections from peers and clients. The first frame on every connection
//! is a [`Hello`] naming the caller. Frames queue per connection in a
//! bounded buffer: [`Transport::send`] refuses with [`SendError::QueueFull`]
//! when it is full, and everything queued in one loop turn leaves in one send.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::frame::{EncodeError, Frame, FrameError, BODY_BYTES_MAX_DEFAULT};
use crate::wire::{Hello, NodeId};

mod link;
pub mod portable;
mod sys;
pub mod uring;

pub use link::Backoff;

/// Which back end to run.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum BackendChoice {
    /// io_uring when the kernel allows it, else portable.
    #[default]
    Auto,
    /// io_uring or fail.
    IoUring,
    /// The portable back end even where io_uring works.
    Portable,
}

/// The back end that runs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    /// io_uring.
    IoUring,
    /// Non-blocking sockets and epoll.
    Portable,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::IoUring => "io_uring",
            Backend::Portable => "portable",
        })
    }
}

/// SQPOLL busy polling for dedicated cores (io_uring only).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum SqPoll {
    /// Off (the default): `DEFER_TASKRUN`, the loop enters the kernel itself.
    #[default]
    Off,
    /// A kernel thread polls the submission queue; `DEFER_TASKRUN` is dropped
    /// (the kernel refuses the two together).
    On {
        /// The poll thread sleeps after this long without work.
        idle_ms: u32,
    },
}

/// Where `SEND_ZC` is used (io_uring only).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum ZeroCopy {
    /// For sends of at least `send_zero_copy_bytes_min` bytes on connections
    /// that are not on loopback (the default).
    #[default]
    AboveThreshold,
    /// As `AboveThreshold`, on loopback too (for tests and measurements).
    AboveThresholdEverywhere,
    /// Never.
    Off,
}

/// Transport configuration; [`Config::new`] gives the defaults.
#[derive(Clone, Debug)]
pub struct Config {
    /// This node (0 for a client).
    pub node: NodeId,
    /// The cluster id sent in every hello (0: unknown, accept any).
    pub cluster_id: u64,
    /// This shard.
    pub shard: u16,
    /// Where to listen, if at all (port 0 picks a free port).
    pub listen: Option<SocketAddr>,
    /// The largest frame body accepted or sent; at least
    /// [`BODY_BYTES_MAX_LOWEST`].
    pub body_bytes_max: u32,
    /// The most bytes queued for one connection before [`Transport::send`]
    /// pushes back. Must hold one frame of `body_bytes_max`.
    pub send_queue_bytes_max: usize,
    /// The most connections, inbound and outbound together.
    pub connections_max: usize,
    /// The size of one receive buffer of the portable back end (one read).
    pub receive_buffer_bytes: usize,
    /// The size of one buffer in io_uring's provided-buffer ring. Small
    /// enough that the ring's buffers, which the kernel fills in turn, stay
    /// in cache: with 64 KiB buffers the kernel's receive copies ran
    /// several times slower than into the portable back end's reused buffer.
    pub provided_buffer_bytes: usize,
    /// The number of buffers in io_uring's provided-buffer ring (a power of
    /// two); receives wait for buffers when all are in use.
    pub provided_buffer_count: u16,
    /// The first reconnect delay; it doubles up to the maximum.
    pub reconnect_delay_min_ms: u64,
    /// The longest reconnect delay.
    pub reconnect_delay_max_ms: u64,
    /// Sends of at least this many bytes use `SEND_ZC` (io_uring only).
    pub send_zero_copy_bytes_min: usize,
    /// Where `SEND_ZC` is used (io_uring only).
    pub zero_copy: ZeroCopy,
    /// Which back end.
    pub backend: BackendChoice,
    /// SQPOLL mode (io_uring only).
    pub sqpoll: SqPoll,
    /// How long, in microseconds, a turn of the io_uring back end may let
    /// the kernel gather completions before waking while frames keep
    /// arriving and nothing of ours waits for an answer (see
    /// [`uring::SubmitOutlook::coalescable`]); 0 wakes at the first
    /// completion, always. A lone frame is held no longer: after this long
    /// the wait ends at the first completion. A turn that may wait less
    /// gathers for no longer than it may wait.
    pub coalesce_wait_us: u32,
    /// How long, in microseconds, a turn that would sleep first polls for
    /// work without sleeping (both back ends); 0, the default, never polls.
    /// For a thread with a CPU of its own (a shard pinned to a dedicated
    /// core): it spends that CPU's idle time to save the wake-up a sleeping
    /// wait costs on every arrival, as Linux's `SO_BUSY_POLL` and Seastar's
    /// idle polling do. Threads that share a CPU slow each other down with
    /// it. A turn never polls longer than it may wait, and after polling
    /// this long without work it sleeps for the rest of its timeout. A
    /// turn whose polling finds work returns with it at once, so coalesced
    /// waits (`coalesce_wait_us`) apply only to the sleep after a fruitless
    /// poll. With io_uring the ring's owner polls: the standalone
    /// [`uring::UringDriver`] does; a runtime that owns the ring and runs
    /// [`uring::UringTransport`] on it polls that ring itself
    /// ([`uring::busy_poll`]).
    pub busy_poll_us: u32,
}

/// The default [`Config::coalesce_wait_us`]. A sender that wakes its
/// receiver for every segment pays the wake-up: coalescing took the
/// io_uring client's CPU per 1 KiB message streamed over one connection
/// from 424 to 325 ns here (net/README.md, "What was tried"). The value is
/// a guess on the safe side, not a sweep: long enough to gather a few
/// segments of a stream, short against the round trips it may delay.
pub const COALESCE_WAIT_US_DEFAULT: u32 = 50;

/// Sends of at least this many bytes use `SEND_ZC` on connections that are
/// not on loopback. Measured here (README): over loopback zero copy lost at
/// every size from 4 KiB to 256 KiB, since the kernel copies the pages for
/// local delivery anyway, so loopback connections never use it; for a real
/// NIC, where it is commonly reported to win above 8-16 KiB, this default
/// stays on the safe side of that range.
pub const SEND_ZERO_COPY_BYTES_MIN_DEFAULT: usize = 64 << 10;
/// After accepts that all failed (the descriptors ran out, say), the
/// backlog is tried again this much later, not at once (it would fail at
/// once) and not only at the next connect (the portable back end's
/// edge-triggered readiness is spent, and none may come).
pub(crate) const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(50);

/// The lowest `body_bytes_max` a transport opens with: far above every
/// fixed-size message (a hello's body is 16 bytes), so the frames a
/// transport sends on its own always fit.
pub const BODY_BYTES_MAX_LOWEST: u32 = 1 << 10;

impl Config {
    /// Whether a connection to or from `peer` may use `SEND_ZC`.
    #[must_use]
    pub fn zero_copy_allowed(&self, peer: Option<SocketAddr>) -> bool {
        match self.zero_copy {
            ZeroCopy::Off => false,
            ZeroCopy::AboveThresholdEverywhere => true,
            ZeroCopy::AboveThreshold => peer.is_some_and(|peer| !peer.ip().is_loopback()),
        }
    }

    /// The defaults for `node`.
    #[must_use]
    pub fn new(node: NodeId) -> Config {
        Config {
            node,
            cluster_id: 0,
            shard: 0,
            listen: None,
            body_bytes_max: BODY_BYTES_MAX_DEFAULT,
            send_queue_bytes_max: 2 * BODY_BYTES_MAX_DEFAULT as usize,
            connections_max: 256,
            receive_buffer_bytes: 64 << 10,
            provided_buffer_bytes: 16 << 10,
            provided_buffer_count: 64,
            reconnect_delay_min_ms: 10,
            reconnect_delay_max_ms: 1_000,
            send_zero_copy_bytes_min: SEND_ZERO_COPY_BYTES_MIN_DEFAULT,
            zero_copy: ZeroCopy::AboveThreshold,
            backend: BackendChoice::Auto,
            sqpoll: SqPoll::Off,
            coalesce_wait_us: COALESCE_WAIT_US_DEFAULT,
            busy_poll_us: 0,
        }
    }

    /// The hello this node sends first on each connection it dials.
    #[must_use]
    pub fn hello(&self) -> Hello {
        Hello {
            cluster_id: self.cluster_id,
            node: self.node,
            shard: self.shard,
        }
    }

    fn check(&self) -> Result<(), TransportError> {
        let frame_bytes_max =
            crate::frame::padded(self.body_bytes_max as usize) + crate::frame::HEADER_BYTES;
        let problem = if self.body_bytes_max < BODY_BYTES_MAX_LOWEST {
            Some("body_bytes_max must be at least 1 KiB (every connection opens with a hello)")
        } else if self.send_queue_bytes_max < frame_bytes_max {
            Some("send_queue_bytes_max must hold one frame of body_bytes_max")
        } else if !self.provided_buffer_count.is_power_of_two()
            || self.provided_buffer_count > 1 << 15
        {
            Some("provided_buffer_count must be a power of two up to 2^15")
        } else if !(4096..=1 << 30).contains(&self.provided_buffer_bytes) {
            Some("provided_buffer_bytes must be 4 KiB ..= 1 GiB")
        } else if self.receive_buffer_bytes < 4096 || self.receive_buffer_bytes > u32::MAX as usize
        {
            Some("receive_buffer_bytes must be 4 KiB .. 4 GiB")
        } else if self.connections_max == 0 || self.connections_max > 1 << 20 {
            Some("connections_max must be 1 ..= 2^20")
        } else {
            None
        };
        match problem {
            Some(reason) => Err(TransportError::Config { reason }),
            None => Ok(()),
        }
    }
}

/// A connection's handle; stays the same across reconnects of an outbound
/// connection, and is never reused for another connection.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ConnectionId(pub u64);

/// Why a connection closed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The other side closed it.
    EndOfStream,
    /// A socket error.
    Io(String),
    /// The other side sent a bad frame.
    Frame(FrameError),
    /// The other side's hello named another cluster.
    WrongCluster {
        /// The cluster id it named.
        cluster_id: u64,
    },
    /// [`Transport::close`] was called.
    Local,
    /// The connection table was full.
    TooManyConnections,
}

/// What happened in one loop turn.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// An outbound connection is up (again); its hello is queued first.
    Connected {
        /// The connection.
        connection: ConnectionId,
        /// The peer dialled.
        peer: NodeId,
    },
    /// Someone connected to our listener.
    Accepted {
        /// The new connection.
        connection: ConnectionId,
    },
    /// A connection's hello arrived.
    Identified {
        /// The connection.
        connection: ConnectionId,
        /// The caller (node 0 is a client).
        hello: Hello,
    },
    /// A checked frame arrived.
    Frame {
        /// The connection it came on.
        connection: ConnectionId,
        /// The sender, once it said hello.
        peer: Option<NodeId>,
        /// The frame.
        frame: Frame,
    },
    /// A connection closed. An outbound one will be redialled after a backoff.
    Closed {
        /// The connection.
        connection: ConnectionId,
        /// Why.
        reason: CloseReason,
    },
}

/// Why a send was refused.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendError {
    /// The connection's queue is full: retry after a loop turn.
    #[error("send queue full: {queued_bytes} bytes queued, limit {queue_bytes_max}")]
    QueueFull {
        /// Bytes queued now.
        queued_bytes: usize,
        /// The limit.
        queue_bytes_max: usize,
    },
    /// No such connection (closed inbound connections are forgotten).
    #[error("unknown connection {connection:?}")]
    UnknownConnection {
        /// The handle.
        connection: ConnectionId,
    },
    /// The value could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// A transport failure that stops the transport (not a single connection).
#[derive(thiserror::Error, Debug)]
#[non_exhaustive]
pub enum TransportError {
    /// io_uring was forced but is unavailable, or a ring call failed.
    #[error("io_uring: {context}: {source}")]
    Uring {
        /// What was being done.
        context: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// A socket or epoll call failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The error.
        source: std::io::Error,
    },
    /// The configuration is inconsistent.
    #[error("bad transport configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: &'static str,
    },
    /// The connection table is full.
    #[error("connection table full ({connections_max} connections)")]
    TooManyConnections {
        /// The limit.
        connections_max: usize,
    },
}

/// The interface both back ends offer.
pub trait Transport {
    /// The back end that runs.
    fn backend(&self) -> Backend;
    /// The listening address (with the port picked), if listening.
    fn local_addr(&self) -> Option<SocketAddr>;
    /// Dials `peer` at `addr` and keeps the connection up (reconnecting with
    /// backoff) until [`Transport::close`].
    ///
    /// # Errors
    /// [`TransportError::TooManyConnections`].
    fn connect(&mut self, peer: NodeId, addr: SocketAddr) -> Result<ConnectionId, TransportError>;
    /// Queues one frame for `connection`; it leaves in the next loop turn.
    /// Frames queued while an outbound connection is down leave once it is
    /// up again, unless the queue fills first.
    ///
    /// # Errors
    /// [`SendError::QueueFull`] (push back), [`SendError::UnknownConnection`],
    /// [`SendError::Encode`].
    fn send(
        &mut self,
        connection: ConnectionId,
        value: &dyn crate::frame::Encode,
    ) -> Result<(), SendError>;
    /// Bytes queued (not yet handed to the kernel) for `connection`.
    fn queued_bytes(&self, connection: ConnectionId) -> usize;
    /// Closes a connection (an outbound one is not redialled).
    fn close(&mut self, connection: ConnectionId);
    /// One loop turn: hands queued frames to the kernel, waits up to
    /// `timeout` for something to happen, and appends what happened.
    /// Something is an event (a frame, a connection change), the end of a
    /// send that had to wait for room in the socket, or room again in a
    /// queue that refused a frame; frames that leave at once are not, so a
    /// caller that sent a request waits for its answer in the same turn,
    /// and a caller with more to send passes a zero timeout. A turn may
    /// return sooner, with or without events (the portable back end
    /// returns after every write).
    ///
    /// # Errors
    /// A failure of the transport itself (not of one connection).
    fn turn(&mut self, timeout: Duration, events: &mut Vec<Event>) -> Result<(), TransportError>;
}

/// Opens the transport `config` asks for: io_uring when available unless
/// forced otherwise. The choice is written to standard error once.
///
/// # Errors
/// [`TransportError`] when the chosen back end cannot start (io_uring
/// forced but unavailable, the listen address taken, ...).
pub fn open(config: Config) -> Result<Box<dyn Transport>, TransportError> {
    config.check()?;
    match config.backend {
        BackendChoice::Portable => {
            announce("portable (forced by configuration)");
            Ok(Box::new(portable::PortableTransport::open(config)?))
        }
        BackendChoice::IoUring => {
            announce("io_uring (forced by configuration)");
            Ok(Box::new(uring::UringDriver::open(config)?))
        }
        BackendChoice::Auto => match uring::UringDriver::open(config.clone()) {
            Ok(driver) => {
                announce("io_uring");
                Ok(Box::new(driver))
            }
            Err(error) => {
                announce(&format!("portable (io_uring unavailable: {error})"));
                Ok(Box::new(portable::PortableTransport::open(config)?))
            }
        },
    }
}

/// Says once per process which back end runs.
fn announce(choice: &str) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| eprintln!("synod-net: transport back end: {choice}"));
}

/// Lines a transport writes per second about connections it closes for a
/// problem or refuses; the rest of that second's are counted.
const LOG_LINES_PER_SECOND: u32 = 20;

/// A transport's lines about its connections on standard error: at most
/// [`LOG_LINES_PER_SECOND`] a second, so that a flood of bad or surplus
/// connections cannot flood the log; the lines held back are counted and
/// reported with the next line written.
#[derive(Debug, Default)]
pub(crate) struct ConnectionLog {
    second_started: Option<Instant>,
    lines: u32,
    held_back: u64,
}

impl ConnectionLog {
    /// Whether a line may be written at `now`: `Some(lines held back
    /// before it)`, or `None` when it is held back (and counted).
    fn admit(&mut self, now: Instant) -> Option<u64> {
        let new_second = self
            .second_started
            .is_none_or(|started| now.saturating_duration_since(started) >= Duration::from_secs(1));
        if new_second {
            self.second_started = Some(now);
            self.lines = 0;
        }
        if self.lines == LOG_LINES_PER_SECOND {
            self.held_back += 1;
            return None;
        }
        self.lines += 1;
        Some(std::mem::take(&mut self.held_back))
    }

    /// Writes `line` unless this second's lines are used up.
    pub(crate) fn write(&mut self, line: impl FnOnce() -> String) {
        if let Some(held_back) = self.admit(Instant::now()) {
            if held_back > 0 {
                eprintln!("synod-net: {held_back} connection lines held back (more than {LOG_LINES_PER_SECOND} a second)");
            }
            eprintln!("synod-net: {}", line());
        }
    }

    /// Logs a connection-level problem (a bad frame, a refused hello).
    pub(crate) fn close(&mut self, connection: ConnectionId, reason: &CloseReason) {
        if !matches!(reason, CloseReason::EndOfStream | CloseReason::Local) {
            self.write(|| format!("closing connection {}: {reason:?}", connection.0));
        }
    }

    /// Logs a connection refused for want of room.
    pub(crate) fn refused(&mut self) {
        self.write(|| {
            format!(
                "refusing a connection: {:?}",
                CloseReason::TooManyConnections
            )
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_connection_lines_writes_twenty_a_second_and_counts_the_rest() {
        let mut log = ConnectionLog::default();
        let start = Instant::now();
        let written: Vec<Option<u64>> = (0..100).map(|_| log.admit(start)).collect();
        assert_eq!(
            written.iter().filter(|admitted| admitted.is_some()).count(),
            20
        );
        assert!(written[..20].iter().all(|admitted| *admitted == Some(0)));
        let later = start + Duration::from_millis(999);
        assert_eq!(log.admit(later), None, "still the same second");
        let next_second = start + Duration::from_secs(1);
        assert_eq!(
            log.admit(next_second),
            Some(81),
            "the held-back lines are reported"
        );
        assert_eq!(log.admit(next_second), Some(0));
    }
}

//! The io_uring back end.
//!
//! [`UringTransport`] owns no ring: the shard that owns the ring hands it
//! [`RingResources`] (a range of its registered file table, a provided-buffer
//! group id, a range of completion tags); the transport prepares its
//! operations into the shard's submission queue ([`UringTransport::prepare`])
//! and takes back the completions whose tag is in its range
//! ([`UringTransport::owns`], [`UringTransport::complete`]).
//! [`UringDriver`] is the small standalone driver that creates, registers and
//! runs a ring of its own, for tests and benchmarks.
//!
//! Operations: multishot accept on the listener, multishot receive into the
//! provided-buffer ring (or, for large frames in answered traffic, one-shot
//! receives into a buffer of the connection's own, see
//! `LARGE_RECEIVE_BYTES`), one send (or `SEND_ZC` above the threshold) per
//! connection in flight, connect, shutdown and close; every socket is a
//! registered (fixed) file.
//!
//! A send is first tried with `MSG_DONTWAIT`, so it completes while the
//! `io_uring_enter` that submits it runs (sent, partly sent, or `EAGAIN`);
//! only after the socket was found full does the next send wait for room.
//! For a small send that answers the peer, the owner learns that its
//! completion will already be there ([`UringTransport::take_outlook`]) and
//! waits for one completion more, so a request and the wait for its
//! answer share one enter.
//!
//! Invariants:
//! - A connection's table slot is freed only when none of its operations is
//!   in flight (`ops_in_flight == 0`), so a completion tag always names the
//!   connection that submitted it.
//! - While `send_in_flight`, the kernel owns the connection's in-flight
//!   buffer: nothing moves, grows or clears it until the send (and, for
//!   `SEND_ZC`, its notification) completes.
//! - One receive per connection is armed at a time. While a one-shot
//!   receive is armed, the kernel owns its `recv_buffer` or (with
//!   `recv_into_partial`) the decoder's partial body: nothing feeds, resets
//!   or drops the decoder until it completes. A one-shot receive is armed
//!   only after the multishot one's last completion.
//! - A kept frame start (`recv_kept`) holds bytes the decoder has not seen:
//!   the next receive completes it before anything else is received.
//! - Memory the kernel may still write or read is never freed: `release`
//!   cancels every operation, and without a clean release `Drop` leaks the
//!   connections with operations in flight.
//! - `SubmitOutlook::completions_at_submit` counts only sends with
//!   `MSG_DONTWAIT` (the kernel fails rather than parks them), so an owner
//!   that adds it to its wait never waits for a completion that is not
//!   already posted; and only sends of at most `COUNTED_SEND_BYTES_MAX`,
//!   or of no more than the socket took whole before, into a socket whose
//!   last send went whole, on a connection the peer sent on since, so a
//!   send left out of the wait is not expected to need the next turn (a
//!   short send does: it must wait for room).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use io_uring::{opcode, squeue, types, SubmissionQueue, Submitter};
use rkyv::util::AlignedVec;

use super::link::{Links, Phase, ReceiveScratch, Role};
use super::sys::{self, RawAddress};
use super::{CloseReason, Config, ConnectionId, Event, SendError, TransportError};
use crate::bytes::{page_start, receive_buffer, ALIGNMENT};
use crate::frame::{Encode, Header, HEADER_BYTES};
use crate::wire::NodeId;

mod bufring;
mod complete;
mod driver;

use bufring::BufRing;
pub use driver::{available, busy_poll, UringDriver};

/// Operations per connection, each with its own completion tag.
const OPS_PER_LINK: u64 = 8;
const OP_RECV: u64 = 0;
const OP_SEND: u64 = 1;
const OP_CONNECT: u64 = 2;
const OP_SHUTDOWN: u64 = 3;
const OP_CLOSE: u64 = 4;
const OP_ACCEPT: u64 = 5;
const OP_CANCEL: u64 = 6;

/// What a connection receiving large frames (bodies larger than a provided
/// buffer) receives into, one receive at a time, instead of the multishot
/// receive into provided buffers: a body of up to this size lands whole and
/// aligned, and becomes a frame in place; the rest of a longer one is
/// received straight into its partial buffer. Either way no provided buffers
/// are cycled through (each 16 KiB of a 64 KiB frame landing in a buffer
/// the ring has not touched for 64 receives, then copied once more).
const LARGE_RECEIVE_BYTES: usize = 128 << 10;
/// A large frame that is the first to begin since the connection's last
/// send is answered traffic (request and response): receive such frames
/// one-shot.
const LARGE_ANSWERED_FRAMES_MAX: u32 = 1;
/// More frames than this begun without a send make the connection a
/// stream: receive multishot again.
const LARGE_STREAM_FRAMES_MIN: u32 = 2;
/// A one-shot receive that filled its whole buffer found the socket backed
/// up (a stream, though each frame is answered, as a follower acknowledges
/// every batch of a pipelining leader): receive multishot for this many
/// frames before answered large frames may switch again.
const LARGE_BACKED_UP_FRAMES: u32 = 64;
/// `IORING_RECVSEND_POLL_FIRST` (linux/io_uring.h): a receive that waits
/// for data before it tries, for when none is expected yet.
const RECVSEND_POLL_FIRST: u16 = 1;
/// Large receive buffers kept for reuse per transport (8 MiB): every
/// connection receiving large frames holds one while it waits, and their
/// completions return them in bursts.
const LARGE_BUFFERS_POOLED_MAX: usize = 64;

/// A send this small may be left out of the owner's wait (see
/// `arm_send`) even before the socket took one as large whole: a socket
/// whose previous send went whole takes this much at once (TCP's send
/// buffer starts at 16 KiB and only grows), so such a send is not expected
/// to come back short and leave the wait with nothing to end it.
const COUNTED_SEND_BYTES_MAX: usize = 16 << 10;

/// A one-shot receive's buffer and the bytes in it.
pub(crate) struct LargeReceive {
    buffer: Arc<AlignedVec<ALIGNMENT>>,
    /// Where the received bytes start: the buffer's first page boundary
    /// plus the stream's phase when the buffer was taken, so frames lie
    /// aligned.
    start: usize,
    /// Bytes already there: the start of a frame an earlier receive
    /// brought (the receive in flight writes after them).
    held: usize,
    /// Bytes the held frame misses (the receive waits for all of them);
    /// when not even its header is here, the rest of the header.
    missing: usize,
}

impl LargeReceive {
    /// When the bytes received so far begin with a frame that has not
    /// arrived whole, and the rest of it fits in the buffer: keeps them,
    /// for the next receive to complete in place.
    fn keep_incomplete_frame(&mut self, body_bytes_max: u32) -> bool {
        let end = self.start + self.held;
        let bytes = &self.buffer.as_slice()[self.start..end];
        let Some(header) = bytes.get(..HEADER_BYTES) else {
            self.missing = HEADER_BYTES - bytes.len();
            return true;
        };
        let header = header.try_into().expect("a header's bytes");
        let Ok(header) = Header::parse(header, body_bytes_max) else {
            return false; // the decoder reports it
        };
        let frame = HEADER_BYTES + header.padded_body_bytes();
        match frame.checked_sub(bytes.len()) {
            Some(missing) if missing > 0 && end + missing <= self.buffer.len() => {
                self.missing = missing;
                true
            }
            _ => false,
        }
    }
}

/// A large receive buffer no frame refers to: the most recently returned
/// one that is free (the warmest), or a new one.
fn take_large_buffer(pool: &mut Vec<Arc<AlignedVec<ALIGNMENT>>>) -> Arc<AlignedVec<ALIGNMENT>> {
    if let Some(at) = pool
        .iter()
        .rposition(|buffer| Arc::strong_count(buffer) == 1)
    {
        return pool.remove(at);
    }
    receive_buffer(LARGE_RECEIVE_BYTES)
}

/// Keeps a large receive buffer for reuse (frames may still refer to it).
fn give_back_large_buffer(
    pool: &mut Vec<Arc<AlignedVec<ALIGNMENT>>>,
    buffer: Arc<AlignedVec<ALIGNMENT>>,
) {
    if pool.len() < LARGE_BUFFERS_POOLED_MAX {
        pool.push(buffer);
    } else if let Some(at) = pool.iter().position(|kept| Arc::strong_count(kept) > 1) {
        // Frames alone keep the held one alive from here on.
        pool[at] = buffer;
    }
}

/// The connection index and operation a tag offset names.
fn link_index_op(offset: u64) -> (usize, u64) {
    ((offset / OPS_PER_LINK) as usize, offset % OPS_PER_LINK)
}

/// What the ring's owner lends the transport.
#[derive(Clone, Debug)]
pub struct RingResources {
    /// Registered-file slots the transport may use (one per connection, plus
    /// the listener's in the first slot). The owner registered them sparse.
    pub files: Range<u32>,
    /// The provided-buffer group id the transport registers its buffer ring under.
    pub buffer_group: u16,
    /// Completion tags (`user_data`) the transport's operations carry.
    pub tags: Range<u64>,
}

impl RingResources {
    /// The file slots and tags a transport of `config` needs.
    #[must_use]
    pub fn needed(config: &Config) -> (u32, u64) {
        let files = config.connections_max as u32 + 1;
        (files, u64::from(files) * OPS_PER_LINK)
    }
}

/// A connection's io_uring state: cache-line aligned, and kept within two
/// lines (128 bytes; hence the 32-bit frame counts). Its layout moved
/// whole cells of the transport benchmark for reasons not understood:
/// unaligned, 64 KiB ping-pong over two connections measured 15.7-17.4k
/// against 22.2-24.3k round trips/s as fields were added; at 192 bytes,
/// 64 KiB streaming over one connection 57-59k against 68-73k messages/s
/// (`net_one`, 7-11 interleaved repeats, both orders).
#[derive(Default)]
#[repr(align(64))]
pub(crate) struct UringSocket {
    file: Option<u32>,
    ops_in_flight: u32,
    recv_armed: bool,
    /// The armed receive is the multishot one (else a one-shot receive
    /// into `recv_buffer` or straight into the decoder's partial body).
    recv_multishot: bool,
    /// Frames arriving here are larger than a provided buffer: receive
    /// them one-shot (see [`LARGE_RECEIVE_BYTES`]); the multishot receive
    /// is cancelled.
    large_frames: bool,
    /// The multishot receive was asked to end (until its last completion).
    recv_cancel_submitted: bool,
    /// The one-shot receive in flight writes into this buffer; the kernel
    /// owns it until the receive completes.
    recv_buffer: Option<LargeReceive>,
    /// The start of a frame that did not arrive whole, kept in its
    /// buffer: the next receive adds the bytes it misses right after it,
    /// so the frame lies whole and aligned, in place.
    recv_kept: Option<LargeReceive>,
    /// The one-shot receive in flight writes into the decoder's partial
    /// body (the room `partial_room` gave); nothing feeds the decoder
    /// until it completes.
    recv_into_partial: bool,
    /// The decoder's `headers_read` when the last send was submitted.
    headers_at_send: u32,
    /// Frames still to receive multishot after a backed-up receive (see
    /// [`LARGE_BACKED_UP_FRAMES`]).
    multishot_frames_left: u32,
    /// The bytes received on the connection, modulo [`ALIGNMENT`]: a
    /// one-shot receive lands at this offset of its buffer, so frames
    /// lie aligned.
    stream_phase: usize,
    send_in_flight: bool,
    /// The send in flight was submitted with `MSG_DONTWAIT`: it completes
    /// within the `io_uring_enter` that submits it.
    send_nonblocking: bool,
    /// The last non-blocking send found the socket full (or took only part
    /// of its bytes): the next send waits for room instead.
    send_waits_for_room: bool,
    /// A send was refused with `QueueFull` since the queue last moved
    /// into flight.
    producer_refused: bool,
    /// Bytes arrived since the last send was submitted: the peer talks
    /// back, so a wait that outlasts this connection's next send will end
    /// with more from it (see `arm_send`).
    received_since_send: bool,
    /// The largest send the socket took whole since it last took one in
    /// part (or refused one): one no larger is expected to go whole again
    /// when it answers the peer, whose message acknowledged ours.
    whole_send_bytes_max: usize,
    zero_copy_notification_due: bool,
    /// `SEND_ZC` may help this connection (not on loopback, where the kernel
    /// copies the pages anyway and zero copy only adds its notification).
    zero_copy_allowed: bool,
    close_submitted: bool,
    /// Forget the connection once closed (closed locally, or inbound).
    forget: bool,
    connect_address: Option<Box<RawAddress>>,
}

/// The io_uring transport, driven by the ring's owner.
pub struct UringTransport {
    config: Config,
    resources: RingResources,
    links: Links<UringSocket>,
    listener_file: Option<u32>,
    accept_armed: bool,
    /// After an accept that failed and ended the multishot accept (the
    /// process out of descriptors, say), when to arm it again: at once, it
    /// would fail at once, and the turns would spin.
    accept_retry_at: Option<Instant>,
    /// Lines about closed and refused connections, rate-limited.
    log: super::ConnectionLog,
    local_addr: Option<SocketAddr>,
    free_files: Vec<u32>,
    buffers: BufRing,
    /// Buffers for one-shot receives of large frames, reused once no
    /// frame refers to them.
    large_buffers: Vec<Arc<AlignedVec<ALIGNMENT>>>,
    pending: VecDeque<squeue::Entry>,
    scratch: ReceiveScratch,
    events: Vec<Event>,
    /// What the owner should know before it waits; see [`SubmitOutlook`].
    outlook: SubmitOutlook,
    /// Bytes arrived since the last `prepare` that pushed everything (see
    /// [`SubmitOutlook::coalescable`]).
    received_since_prepare: bool,
    receive_stats: ReceiveStats,
    /// `release` cancelled every operation: the kernel writes into none
    /// of the transport's memory any more.
    released: bool,
}

/// How the transport received, for diagnostics and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReceiveStats {
    /// Completions of multishot receives into provided buffers.
    pub multishot_receives: u64,
    /// One-shot receives of large frames into a buffer of their own.
    pub large_receives: u64,
    /// Of those, receives that completed a frame whose start an earlier
    /// one brought, in place after it.
    pub kept_frame_receives: u64,
    /// Receives straight into a partial body (a frame larger than the
    /// large receive buffer).
    pub direct_receives: u64,
    /// Multishot receives cancelled to receive large frames one-shot.
    pub multishot_cancels: u64,
}

/// What the owner of the ring should know, after submitting what
/// [`UringTransport::prepare`] pushed, to wait neither too long nor in vain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubmitOutlook {
    /// Completions the kernel posts within the `io_uring_enter` that
    /// submits them and that need no next turn (small sends with
    /// `MSG_DONTWAIT` answering the peer): an owner that waits for `n`
    /// completions in that enter waits for `n` plus these, so that such a
    /// send ends no wait (a round trip then costs one enter).
    pub completions_at_submit: u32,
    /// A send queue that refused a frame (`QueueFull`) has room again: its
    /// producer waits to fill it, so the owner should not wait at all.
    pub room_made: bool,
    /// Bytes arrived since the last turn's [`UringTransport::prepare`]
    /// (the last call that pushed everything), and no
    /// send of the transport is in flight (none waits for room, none was
    /// just submitted): nothing of ours needs a prompt wake-up. The owner
    /// may let the kernel gather a few completions before it wakes
    /// (`IORING_FEAT_MIN_TIMEOUT`: a wait for several completions that ends
    /// at the first one once a minimum wait has passed), which spares the
    /// sender a wake-up of this thread for every segment it sends.
    pub coalescable: bool,
}

fn uring_error(context: &'static str) -> impl FnOnce(std::io::Error) -> TransportError {
    move |source| TransportError::Uring { context, source }
}

impl UringTransport {
    /// Sets the transport up on a ring the caller owns: registers its buffer
    /// ring and, when configured, binds the listener into the first file slot.
    ///
    /// # Errors
    /// Too few resources, or a registration or bind failed.
    pub fn new(
        config: Config,
        resources: RingResources,
        submitter: &Submitter<'_>,
    ) -> Result<UringTransport, TransportError> {
        config.check()?;
        let (files, tags) = RingResources::needed(&config);
        let enough = resources.files.len() >= files as usize
            && resources.tags.end - resources.tags.start >= tags;
        if !enough {
            return Err(TransportError::Config {
                reason: "ring resources smaller than connections_max needs",
            });
        }
        let buffers = BufRing::register(
            submitter,
            resources.buffer_group,
            config.provided_buffer_count,
            config.provided_buffer_bytes,
        )?;
        let mut transport = UringTransport {
            links: Links::new(config.connections_max),
            free_files: resources.files.clone().skip(1).rev().collect(),
            listener_file: None,
            accept_armed: false,
            accept_retry_at: None,
            log: super::ConnectionLog::default(),
            local_addr: None,
            buffers,
            large_buffers: Vec::new(),
            pending: VecDeque::new(),
            scratch: ReceiveScratch::new(),
            events: Vec::new(),
            outlook: SubmitOutlook::default(),
            received_since_prepare: false,
            receive_stats: ReceiveStats::default(),
            released: false,
            config,
            resources,
        };
        if let Some(address) = transport.config.listen {
            let listener =
                std::net::TcpListener::bind(address).map_err(|source| TransportError::Io {
                    context: "bind",
                    source,
                })?;
            transport.local_addr = listener.local_addr().ok();
            let slot = transport.resources.files.start;
            submitter
                .register_files_update(slot, &[listener.as_raw_fd()])
                .map_err(uring_error("register listener"))?;
            transport.listener_file = Some(slot);
        }
        Ok(transport)
    }

    /// Releases what the transport holds on the ring (then take the
    /// remaining completions with [`UringTransport::complete_released`]
    /// until [`UringTransport::is_drained`]): cancels its operations
    /// (synchronously), empties its file slots (closing its sockets now, not
    /// when the ring goes), and unregisters its buffer ring. Call before
    /// dropping the transport.
    pub fn release(&mut self, submitter: &Submitter<'_>) {
        if self.released {
            return;
        }
        // Operations queued here but never handed to the kernel end now:
        // they will never post a completion.
        for entry in std::mem::take(&mut self.pending) {
            let tag = entry.get_user_data();
            if !self.owns(tag) {
                continue;
            }
            let (index, op) = link_index_op(tag - self.resources.tags.start);
            if op == OP_ACCEPT {
                self.accept_armed = false;
            } else if let Some(link) = self.links.get_mut(index) {
                link.socket.ops_in_flight = link.socket.ops_in_flight.saturating_sub(1);
                if op == OP_SEND {
                    // A SEND_ZC never submitted has no notification to come.
                    link.socket.send_in_flight = false;
                    link.socket.zero_copy_notification_due = false;
                }
            }
        }
        // Empty the file slots first: an operation the kernel has not
        // issued yet (an SQPOLL thread may be about to) then fails rather
        // than parks; issued ones hold their file and are cancelled by tag.
        for file in self.resources.files.clone() {
            let _ = submitter.register_files_update(file, &[-1]);
        }
        let timeout = Some(types::Timespec::new().sec(1));
        let mut tags = vec![self.tag(self.config.connections_max, OP_ACCEPT)];
        // A SEND_ZC whose notification is due has nothing left to cancel,
        // yet the kernel may still read its buffer.
        let mut cancelled = true;
        for index in 0..self.links.capacity_used() {
            let Some(link) = self.links.get(index) else {
                continue;
            };
            if link.socket.ops_in_flight > 0 {
                tags.extend((0..OPS_PER_LINK).map(|op| self.tag(index, op)));
            }
            cancelled &= !link.socket.zero_copy_notification_due;
        }
        for tag in tags {
            let cancel = types::CancelBuilder::user_data(tag).all();
            match submitter.register_sync_cancel(timeout, cancel) {
                Ok(()) => {}
                Err(error) if error.raw_os_error() == Some(libc::ENOENT) => {}
                Err(_) => cancelled = false,
            }
        }
        self.released = cancelled;
        self.buffers.unregister(submitter);
        // Run deferred task work, where the kernel drops the files' last references.
        let zero = types::Timespec::new();
        let _ = submitter.submit_with_args(1, &types::SubmitArgs::new().timespec(&zero));
    }

    /// Takes a completion after [`UringTransport::release`]: it only
    /// counts operations ending, starts nothing. The owner keeps entering
    /// the ring and handing these over until [`UringTransport::is_drained`]
    /// (a close linked behind a shutdown, or an entry an SQPOLL thread had
    /// not taken yet, ends only at a later enter).
    pub fn complete_released(&mut self, cqe: &io_uring::cqueue::Entry) {
        if !self.owns(cqe.user_data()) {
            return;
        }
        let more = io_uring::cqueue::more(cqe.flags());
        let (index, op) = link_index_op(cqe.user_data() - self.resources.tags.start);
        if op == OP_ACCEPT {
            // Every accepted connection comes in a completion that says more
            // may follow; only the last one ends the multishot accept.
            if cqe.result() >= 0 {
                // A connection accepted as the transport went: not ours to keep.
                // SAFETY: a successful accept returns a new descriptor we own.
                drop(unsafe {
                    <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(cqe.result())
                });
            }
            self.accept_armed &= more;
        } else if more {
            // Not an operation's last completion.
        } else if let Some(link) = self.links.get_mut(index) {
            link.socket.ops_in_flight = link.socket.ops_in_flight.saturating_sub(1);
        }
    }

    /// True when none of the transport's operations is in flight: nothing
    /// of its memory is the kernel's any more.
    #[must_use]
    pub fn is_drained(&self) -> bool {
        !self.accept_armed
            && (0..self.links.capacity_used()).all(|index| {
                self.links
                    .get(index)
                    .is_none_or(|link| link.socket.ops_in_flight == 0)
            })
    }

    fn tag(&self, index: usize, op: u64) -> u64 {
        self.resources.tags.start + index as u64 * OPS_PER_LINK + op
    }

    /// True when a completion belongs to this transport.
    #[must_use]
    pub fn owns(&self, user_data: u64) -> bool {
        self.resources.tags.contains(&user_data)
    }

    /// The listening address (with the port picked), if listening.
    #[must_use]
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Moves the events gathered since the last call to `out`.
    pub fn drain_events(&mut self, out: &mut Vec<Event>) {
        out.append(&mut self.events);
    }

    /// Sends handed to the kernel whose completion has not come back.
    #[must_use]
    pub fn sends_in_flight(&self) -> usize {
        (0..self.links.capacity_used())
            .filter(|&index| {
                self.links
                    .get(index)
                    .is_some_and(|link| link.socket.send_in_flight)
            })
            .count()
    }

    /// What the owner should know about the operations prepared since the
    /// last call before it waits (see [`SubmitOutlook`]); starts afresh.
    pub fn take_outlook(&mut self) -> SubmitOutlook {
        std::mem::take(&mut self.outlook)
    }

    /// How the transport received so far.
    #[must_use]
    pub fn receive_stats(&self) -> ReceiveStats {
        self.receive_stats
    }

    /// True when events wait to be drained (the owner should not sleep).
    #[must_use]
    pub fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// When the next redial is due, if any connection waits for one.
    #[must_use]
    pub fn next_deadline(&self) -> Option<Instant> {
        (0..self.links.capacity_used())
            .filter_map(|index| match self.links.get(index)?.phase {
                Phase::Down { retry_at } => Some(retry_at),
                _ => None,
            })
            .chain(self.accept_retry_at)
            .min()
    }

    /// Dials `peer` at `addr` and keeps the connection up until closed.
    ///
    /// # Errors
    /// [`TransportError::TooManyConnections`].
    pub fn connect(
        &mut self,
        peer: NodeId,
        addr: SocketAddr,
    ) -> Result<ConnectionId, TransportError> {
        self.links
            .insert_outbound(peer, addr, UringSocket::default(), &self.config)
    }

    /// Queues one frame for `connection`.
    ///
    /// # Errors
    /// As [`super::Transport::send`].
    pub fn send(&mut self, connection: ConnectionId, value: &dyn Encode) -> Result<(), SendError> {
        let link = self
            .links
            .by_id_mut(connection)
            .ok_or(SendError::UnknownConnection { connection })?;
        let queued = link.enqueue(
            value,
            self.config.body_bytes_max,
            self.config.send_queue_bytes_max,
        );
        if matches!(queued, Err(SendError::QueueFull { .. })) {
            link.socket.producer_refused = true;
        }
        queued
    }

    /// Bytes queued and not yet handed to the kernel for `connection`.
    #[must_use]
    pub fn queued_bytes(&self, connection: ConnectionId) -> usize {
        self.links.by_id(connection).map_or(0, |link| {
            link.queued.len()
                + if link.socket.send_in_flight {
                    0
                } else {
                    link.unsent().len()
                }
        })
    }

    /// Closes a connection; an outbound one is not redialled.
    pub fn close(&mut self, connection: ConnectionId) {
        if let Some(index) = self.links.index_of(connection) {
            if let Some(link) = self.links.get_mut(index) {
                link.socket.forget = true;
            }
            self.start_closing(index, CloseReason::Local);
        }
    }

    /// Prepares this turn's operations (redials, receives, one send per
    /// connection, accepts, closes) and pushes them into `sq`. Returns false
    /// when `sq` filled up first: submit, then call again.
    pub fn prepare(
        &mut self,
        now: Instant,
        submitter: &Submitter<'_>,
        sq: &mut SubmissionQueue<'_>,
    ) -> bool {
        assert!(
            sq.capacity() >= 2,
            "a shutdown and its linked close go into the ring together"
        );
        self.buffers.reclaim();
        if self.accept_retry_at.is_some_and(|at| at <= now) {
            self.accept_retry_at = None;
        }
        if !self.accept_armed && self.accept_retry_at.is_none() {
            if let Some(file) = self.listener_file {
                let entry = opcode::AcceptMulti::new(types::Fixed(file))
                    .build()
                    .user_data(self.tag(self.config.connections_max, OP_ACCEPT));
                self.pending.push_back(entry);
                self.accept_armed = true;
            }
        }
        for index in 0..self.links.capacity_used() {
            self.prepare_link(index, now, submitter);
        }
        // Kept until a call pushes everything: when the queue fills first,
        // the owner submits and calls again within the same turn.
        self.outlook.coalescable = self.received_since_prepare
            && self.outlook.completions_at_submit == 0
            && self.sends_in_flight() == 0;
        while let Some(entry) = self.pending.front() {
            // A shutdown is hard-linked to the close behind it: both go in
            // together, or the next entry anyone pushes into a shared ring
            // would be linked behind our shutdown instead.
            let linked = self.owns(entry.get_user_data())
                && link_index_op(entry.get_user_data() - self.resources.tags.start).1
                    == OP_SHUTDOWN;
            let needed = if linked { 2 } else { 1 };
            if sq.capacity() - sq.len() < needed {
                return false;
            }
            for _ in 0..needed {
                let entry = self
                    .pending
                    .pop_front()
                    .expect("a shutdown is queued with its close");
                // SAFETY: every entry's buffers and addresses live in the
                // connection (or the buffer ring), which outlives the
                // operation by the invariants above.
                unsafe { sq.push(&entry) }.expect("room was checked");
            }
        }
        self.received_since_prepare = false;
        true
    }

    fn prepare_link(&mut self, index: usize, now: Instant, submitter: &Submitter<'_>) {
        let Some(link) = self.links.get(index) else {
            return;
        };
        match link.phase {
            Phase::Down { retry_at } if retry_at <= now => self.dial(index, now, submitter),
            Phase::Open => {
                self.arm_recv(index);
                self.arm_send(index);
            }
            Phase::Closing => self.submit_close(index),
            _ => {}
        }
    }

    fn arm_recv(&mut self, index: usize) {
        let group = self.buffers.group();
        let has_buffers = self.buffers.available() > 0;
        let (tag, cancel_tag) = (self.tag(index, OP_RECV), self.tag(index, OP_CANCEL));
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        let Some(file) = link.socket.file else { return };
        let socket = &mut link.socket;
        if socket.recv_armed {
            // The multishot receive would keep cutting large frames into
            // provided buffers: end it, and receive them one-shot after.
            if socket.large_frames && socket.recv_multishot && !socket.recv_cancel_submitted {
                socket.recv_cancel_submitted = true;
                socket.ops_in_flight += 1;
                self.receive_stats.multishot_cancels += 1;
                self.pending
                    .push_back(opcode::AsyncCancel::new(tag).build().user_data(cancel_tag));
            }
            return;
        }
        // A kept frame start is completed first, whatever the mode: the
        // decoder has not seen its bytes.
        let entry = if let Some(mut kept) = link.socket.recv_kept.take() {
            // The rest of a frame, after its start in the same buffer.
            let at = kept.start + kept.held;
            let target = Arc::get_mut(&mut kept.buffer).expect("nothing refers to a kept buffer");
            // SAFETY: `at + missing <= len` (`keep_incomplete_frame`; when
            // not even the header is here, `at + missing` is the header's
            // end, within the 128 KiB buffer).
            let start = unsafe { target.as_mut_ptr().add(at) };
            let length = kept.missing as u32;
            link.socket.recv_buffer = Some(kept);
            opcode::Recv::new(types::Fixed(file), start, length)
                .flags(libc::MSG_WAITALL)
                .build()
        } else if !link.socket.large_frames {
            if !has_buffers {
                return;
            }
            opcode::RecvMulti::new(types::Fixed(file), group).build()
        } else if let Some((start, room)) = link.decoder.partial_room() {
            // The rest of a body, straight into its buffer (no copy);
            // `room` is at most the body limit, a u32.
            link.socket.recv_into_partial = true;
            opcode::Recv::new(types::Fixed(file), start, room as u32)
                .flags(libc::MSG_WAITALL)
                .build()
        } else {
            let mut buffer = take_large_buffer(&mut self.large_buffers);
            let at = page_start(&buffer) + link.socket.stream_phase;
            let target = Arc::get_mut(&mut buffer).expect("a buffer no frame refers to");
            let length = (target.len() - at) as u32;
            // SAFETY: `at` (a page start plus a phase) is below a page, the
            // buffer over 128 KiB (`receive_buffer`): within the buffer.
            let start = unsafe { target.as_mut_ptr().add(at) };
            link.socket.recv_buffer = Some(LargeReceive {
                buffer,
                start: at,
                held: 0,
                missing: 0,
            });
            // Between frames of answered traffic the next frame comes
            // after our answer, not yet: wait before trying.
            let poll_first = if link.decoder.is_between_frames() {
                RECVSEND_POLL_FIRST
            } else {
                0
            };
            opcode::Recv::new(types::Fixed(file), start, length)
                .ioprio(poll_first)
                .build()
        };
        let socket = &mut link.socket;
        socket.recv_multishot = socket.recv_buffer.is_none() && !socket.recv_into_partial;
        socket.recv_armed = true;
        socket.ops_in_flight += 1;
        self.pending.push_back(entry.user_data(tag));
    }

    fn arm_send(&mut self, index: usize) {
        let threshold = self.config.send_zero_copy_bytes_min;
        let tag = self.tag(index, OP_SEND);
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        let Some(file) = link.socket.file else { return };
        if link.socket.send_in_flight {
            return;
        }
        // The queue moves into flight, leaving room for a refused producer.
        let queue_moves = link.unsent().is_empty() && !link.queued.is_empty();
        if link.prepare_send() == 0 {
            return;
        }
        if queue_moves && std::mem::take(&mut link.socket.producer_refused) {
            self.outlook.room_made = true;
        }
        let answers_peer = std::mem::take(&mut link.socket.received_since_send);
        link.socket.headers_at_send = link.decoder.headers_read() as u32;
        let unsent = link.unsent();
        let (pointer, length) = (unsent.as_ptr(), unsent.len() as u32);
        let entry = if link.socket.zero_copy_allowed && length as usize >= threshold {
            link.socket.zero_copy_notification_due = true;
            opcode::SendZc::new(types::Fixed(file), pointer, length).build()
        } else if link.socket.send_waits_for_room {
            opcode::Send::new(types::Fixed(file), pointer, length).build()
        } else {
            link.socket.send_nonblocking = true;
            // A send that comes back short needs the next turn (to wait for
            // room), so only a send that should not be short (a small one,
            // or one no larger than the socket took whole before, into a
            // socket whose last send went whole) and that answers the peer
            // (which will end this wait by talking back) is left out of the
            // wait. Others end it, as they always did.
            let fits = COUNTED_SEND_BYTES_MAX.max(link.socket.whole_send_bytes_max);
            if answers_peer && length as usize <= fits {
                self.outlook.completions_at_submit += 1;
            }
            opcode::Send::new(types::Fixed(file), pointer, length)
                .flags(libc::MSG_DONTWAIT)
                .build()
        };
        link.socket.send_in_flight = true;
        link.socket.ops_in_flight += 1;
        self.pending.push_back(entry.user_data(tag));
    }

    /// Opens a socket in a free file slot and starts connecting it.
    fn dial(&mut self, index: usize, now: Instant, submitter: &Submitter<'_>) {
        let tag = self.tag(index, OP_CONNECT);
        if self.links.get(index).is_none() {
            return;
        }
        let Some(file) = self.free_files.pop() else {
            return self.redial_later(index, now);
        };
        let Some(link) = self.links.get_mut(index) else {
            unreachable!("checked above");
        };
        let Role::Outbound { addr, .. } = link.role else {
            return;
        };
        let address = Box::new(RawAddress::new(addr));
        let zero_copy_allowed = self.config.zero_copy_allowed(Some(addr));
        let registered = sys::tcp_socket(&address)
            .and_then(|socket| submitter.register_files_update(file, &[socket.as_raw_fd()]));
        if registered.is_err() {
            self.free_files.push(file);
            return self.redial_later(index, now);
        }
        let entry = opcode::Connect::new(types::Fixed(file), address.as_ptr(), address.length())
            .build()
            .user_data(tag);
        link.socket = UringSocket {
            file: Some(file),
            ops_in_flight: 1,
            connect_address: Some(address),
            zero_copy_allowed,
            ..UringSocket::default()
        };
        link.phase = Phase::Connecting;
        self.pending.push_back(entry);
    }

    fn redial_later(&mut self, index: usize, now: Instant) {
        if let Some(link) = self.links.get_mut(index) {
            if let Role::Outbound { backoff, .. } = &mut link.role {
                link.phase = Phase::Down {
                    retry_at: now + backoff.next_delay(),
                };
            }
        }
    }

    /// Starts tearing a connection down; reports `Closed` if it was open.
    fn start_closing(&mut self, index: usize, reason: CloseReason) {
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        if link.phase == Phase::Closing {
            return;
        }
        let was_open = link.phase == Phase::Open;
        link.phase = Phase::Closing;
        if was_open {
            self.log.close(link.id, &reason);
            self.events.push(Event::Closed {
                connection: link.id,
                reason,
            });
        }
        self.submit_close(index);
        self.finish_if_drained(index);
    }

    fn submit_close(&mut self, index: usize) {
        let (shutdown, close) = (self.tag(index, OP_SHUTDOWN), self.tag(index, OP_CLOSE));
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        let Some(file) = link.socket.file else { return };
        if link.socket.close_submitted {
            return;
        }
        link.socket.close_submitted = true;
        link.socket.ops_in_flight += 2;
        // Hard-linked: the close runs after the shutdown, whatever its result.
        self.pending.push_back(
            opcode::Shutdown::new(types::Fixed(file), libc::SHUT_RDWR)
                .build()
                .flags(squeue::Flags::IO_HARDLINK)
                .user_data(shutdown),
        );
        self.pending.push_back(
            opcode::Close::new(types::Fixed(file))
                .build()
                .user_data(close),
        );
    }

    /// Frees a closing connection's slot once nothing of it is in flight:
    /// an outbound connection waits to redial, others are forgotten.
    fn finish_if_drained(&mut self, index: usize) {
        let body_bytes_max = self.config.body_bytes_max;
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        if link.phase != Phase::Closing || link.socket.ops_in_flight > 0 {
            return;
        }
        if let Some(file) = link.socket.file.take() {
            self.free_files.push(file);
        }
        let forget = link.socket.forget || matches!(link.role, Role::Inbound);
        link.socket = UringSocket::default();
        link.reset_stream(body_bytes_max);
        match &mut link.role {
            Role::Outbound { backoff, .. } if !forget => {
                link.phase = Phase::Down {
                    retry_at: Instant::now() + backoff.next_delay(),
                }
            }
            _ => {
                self.links.remove(index);
            }
        }
    }
}

impl Drop for UringTransport {
    /// A connection whose operations have not all posted their last
    /// completion (taken by [`UringTransport::complete`] or, after
    /// `release`, [`UringTransport::complete_released`]) may still have the
    /// kernel write or read its buffers (a receive parked on an idle peer
    /// waits forever; a close hard-linked behind a shutdown starts only at
    /// a later enter): leak it rather than free memory the kernel owns.
    fn drop(&mut self) {
        for index in 0..self.links.capacity_used() {
            let busy = self
                .links
                .get(index)
                .is_some_and(|link| link.socket.ops_in_flight > 0);
            if busy {
                std::mem::forget(self.links.remove(index));
            }
        }
    }
}

#[cfg(test)]
#[test]
fn a_connection_state_fits_two_cache_lines() {
    assert!(
        size_of::<UringSocket>() <= 128,
        "UringSocket grew to {} bytes: measure `synod bench net` before keeping that",
        size_of::<UringSocket>()
    );
}

/// A one-shot receive starts at its buffer's page start plus the stream's
/// phase (`arm_recv`): frames in it lie aligned, a frame start kept there
/// waits for exactly the rest of a frame that fits before the buffer's end
/// and for nothing that does not, and a fresh receive has a whole
/// [`LARGE_RECEIVE_BYTES`] from the page start on.
#[cfg(test)]
#[test]
fn a_large_receive_at_any_phase_keeps_exactly_the_frames_that_fit() {
    use crate::wire::Kind;

    let kind = Kind::ALL[0];
    let body_bytes_max = u32::MAX;
    let mut pool = Vec::new();
    for phase in 0..ALIGNMENT {
        let mut buffer = take_large_buffer(&mut pool);
        let start = page_start(&buffer) + phase;
        assert!(buffer.len() - page_start(&buffer) >= LARGE_RECEIVE_BYTES);
        // A frame begins `ALIGNMENT - phase` bytes in (the stream reaches
        // a multiple of 16 there), on a 16-byte boundary of memory.
        let frame_at = start + (ALIGNMENT - phase) % ALIGNMENT;
        assert_eq!((buffer.as_ptr() as usize + frame_at) % ALIGNMENT, 0);
        // A frame start at `start` (phase 0 only: at another phase the
        // decoder is inside a frame and the buffer is not kept).
        if phase == 0 {
            let room = buffer.len() - start;
            for (frame_bytes, fits) in [
                (room - room % ALIGNMENT, true),
                (room - room % ALIGNMENT + ALIGNMENT, false),
            ] {
                let header = Header {
                    kind,
                    body_bytes: (frame_bytes - HEADER_BYTES) as u32,
                    body_crc32c: 0,
                };
                let target = Arc::get_mut(&mut buffer).expect("no frame refers to it");
                target.as_mut_slice()[start..start + HEADER_BYTES]
                    .copy_from_slice(&header.to_bytes());
                for held in [HEADER_BYTES, HEADER_BYTES + 1, 4096 + 5] {
                    let mut large = LargeReceive {
                        buffer: buffer.clone(),
                        start,
                        held,
                        missing: 0,
                    };
                    assert_eq!(
                        large.keep_incomplete_frame(body_bytes_max),
                        fits,
                        "phase {phase}, frame {frame_bytes}, held {held}"
                    );
                    if fits {
                        assert_eq!(start + held + large.missing, buffer.len());
                    }
                }
            }
            // Not even a header: the rest of it, well inside the buffer.
            let mut large = LargeReceive {
                buffer: buffer.clone(),
                start,
                held: 5,
                missing: 0,
            };
            assert!(large.keep_incomplete_frame(body_bytes_max));
            assert_eq!(large.missing, HEADER_BYTES - 5);
        }
        give_back_large_buffer(&mut pool, buffer);
    }
}

/// Receives write only from their buffer's first page boundary on: a
/// multishot receive within `[page_start, page_start + provided_buffer_bytes)`
/// of its provided buffer (the entry the kernel got), and a one-shot large
/// receive nowhere before `page_start`. After a stream of small frames
/// through many provided buffers and answered large frames received
/// one-shot, every byte outside those windows is still the zero the
/// buffers were allocated with.
#[cfg(test)]
#[test]
fn receives_write_only_from_the_page_start_within_the_configured_room() {
    use crate::bytes::PAGE_BYTES;
    use crate::frame::{encode_into, Archived};
    use crate::samples::request;
    use crate::transport::{Transport, TransportError};
    use crate::wire::{Hello, NodeId};
    use std::io::{Read, Write};
    use std::time::Duration;

    const PROVIDED_BYTES: usize = 4096;
    const SMALL: u64 = 60;
    const LARGE: u64 = 6;
    let mut config = Config::new(NodeId(1));
    config.listen = Some("127.0.0.1:0".parse().expect("an address"));
    config.provided_buffer_bytes = PROVIDED_BYTES;
    config.provided_buffer_count = 16;
    let mut driver = match UringDriver::open(config) {
        Ok(driver) => driver,
        Err(TransportError::Uring { .. }) if !available() => return,
        Err(error) => panic!("the driver opens: {error}"),
    };
    let address = driver.local_addr().expect("listening");
    let mut stream = AlignedVec::<ALIGNMENT>::new();
    let hello = Hello {
        cluster_id: 0,
        node: NodeId(2),
        shard: 0,
    };
    encode_into(&mut stream, &hello, 1 << 20).expect("encodes");
    for seq in 0..SMALL {
        // Lengths off the 16-byte grid and off the provided buffer's size.
        encode_into(
            &mut stream,
            &request(seq, 2_500 + seq as usize * 7),
            1 << 20,
        )
        .expect("encodes");
    }
    let (go, rounds) = std::sync::mpsc::channel::<u64>();
    let writer = std::thread::spawn(move || {
        let mut client = std::net::TcpStream::connect(address).expect("connects");
        let mut drain = client.try_clone().expect("a second handle");
        std::thread::spawn(move || {
            let mut sink = [0u8; 4096];
            while drain.read(&mut sink).is_ok_and(|count| count > 0) {}
        });
        client.write_all(&stream).expect("writes");
        for seq in rounds {
            let mut frame = AlignedVec::<ALIGNMENT>::new();
            encode_into(&mut frame, &request(seq, 64 << 10), 1 << 20).expect("encodes");
            client.write_all(&frame).expect("writes");
        }
        client
    });
    let started = Instant::now();
    let mut seqs = Vec::new();
    while seqs.len() < (SMALL + LARGE) as usize {
        assert!(started.elapsed() < Duration::from_secs(30), "got {seqs:?}");
        let mut events = Vec::new();
        driver
            .turn(Duration::from_millis(1), &mut events)
            .expect("turns");
        for event in events {
            let Event::Frame {
                connection, frame, ..
            } = event
            else {
                continue;
            };
            if let Archived::Request(request) = frame.archived() {
                seqs.push(request.seq.to_native().0);
            }
            // Answer each frame from the last small one on, so the large
            // ones are answered traffic (received one-shot), and ask for
            // the next large one.
            let next = seqs.len() as u64;
            if (SMALL..SMALL + LARGE).contains(&next) {
                driver.send(connection, &request(0, 8)).expect("room");
                go.send(next).expect("the writer waits");
            }
        }
    }
    drop(go);
    assert_eq!(seqs, (0..SMALL + LARGE).collect::<Vec<_>>());
    let client = writer.join().expect("the writer finishes");
    let transport = driver.transport();
    assert!(
        transport.receive_stats().large_receives > 0,
        "{:?}",
        transport.receive_stats()
    );
    let mut filled_to_the_end = 0;
    for buffer in transport.buffers.every_buffer() {
        let page = page_start(buffer);
        assert_eq!((buffer.as_ptr() as usize + page) % PAGE_BYTES, 0);
        let (before, rest) = buffer.split_at(page);
        let (window, after) = rest.split_at(PROVIDED_BYTES);
        assert!(
            before.iter().all(|&byte| byte == 0),
            "written before the page"
        );
        assert!(
            after.iter().all(|&byte| byte == 0),
            "written past provided_buffer_bytes"
        );
        filled_to_the_end += usize::from(window[PROVIDED_BYTES - 64..].iter().any(|&b| b != 0));
    }
    assert!(
        filled_to_the_end > 0,
        "some receive filled its whole buffer"
    );
    assert!(!transport.large_buffers.is_empty());
    for buffer in &transport.large_buffers {
        let page = page_start(buffer);
        assert!(
            buffer[..page].iter().all(|&byte| byte == 0),
            "a large receive wrote before its page"
        );
    }
    drop(client);
}

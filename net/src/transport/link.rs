//! What both back ends keep per connection: the role (dialled or accepted),
//! the stream decoder, the bounded send queue, and the reconnect backoff.
//!
//! Invariants:
//! - `queued.len() <= send_queue_bytes_max` after every enqueue, and
//!   `in_flight` was a `queued` buffer, so a connection holds at most twice
//!   the limit however long its peer is gone.
//! - `in_flight_sent <= in_flight.len()`; the kernel owns `in_flight` while a
//!   send of it is in flight (the io_uring back end does not touch it then).
//! - A connection id is never reused: its generation rises on every reuse of
//!   a table slot.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rkyv::util::AlignedVec;

use super::{CloseReason, Config, ConnectionId, Event, SendError, TransportError};
use crate::bytes::ALIGNMENT;
use crate::decode::{Decoder, RealignPool};
use crate::frame::{encode_into, Archived, Encode, Frame};
use crate::wire::{Hello, NodeId};

/// Exponential reconnect backoff: the delay doubles from the minimum up to
/// the maximum and returns to the minimum once a connection is up.
#[derive(Clone, Debug)]
pub struct Backoff {
    delay_min: Duration,
    delay_max: Duration,
    next: Duration,
}

impl Backoff {
    /// A backoff from `delay_min` doubling up to `delay_max`.
    #[must_use]
    pub fn new(delay_min: Duration, delay_max: Duration) -> Backoff {
        assert!(delay_min <= delay_max, "backoff minimum above maximum");
        Backoff {
            delay_min,
            delay_max,
            next: delay_min,
        }
    }

    /// The delay before the next attempt; doubles the one after.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.delay_max);
        delay
    }

    /// A connection is up: the next failure waits the minimum again.
    pub fn reset(&mut self) {
        self.next = self.delay_min;
    }
}

/// What receiving borrows from the transport: a frame list reused across
/// receives and the realignment buffers all its connections share.
pub(crate) struct ReceiveScratch {
    pub frames: Vec<Frame>,
    pub realign: RealignPool,
}

impl ReceiveScratch {
    /// Realignment buffers kept per transport.
    const REALIGN_BUFFERS_MAX: usize = 64;

    pub fn new() -> ReceiveScratch {
        ReceiveScratch {
            frames: Vec::new(),
            realign: RealignPool::new(Self::REALIGN_BUFFERS_MAX),
        }
    }
}

/// Who opened the connection.
pub(crate) enum Role {
    /// We dial `peer` at `addr`, and redial after failures.
    Outbound {
        peer: NodeId,
        addr: SocketAddr,
        backoff: Backoff,
    },
    /// Someone dialled us.
    Inbound,
}

/// Where a connection stands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Phase {
    /// Outbound, waiting to redial at the instant.
    Down { retry_at: Instant },
    /// Outbound, connect in progress.
    Connecting,
    /// Frames flow.
    Open,
    /// Being torn down; the slot frees when the back end is done with it.
    Closing,
}

/// One connection; `S` is the back end's socket state.
pub(crate) struct Link<S> {
    pub id: ConnectionId,
    pub role: Role,
    pub phase: Phase,
    pub peer: Option<NodeId>,
    pub decoder: Decoder,
    pub queued: AlignedVec<ALIGNMENT>,
    pub in_flight: AlignedVec<ALIGNMENT>,
    pub in_flight_sent: usize,
    pub socket: S,
}

impl<S> Link<S> {
    /// Encodes `value` at the end of the queue, or refuses when full.
    pub fn enqueue(
        &mut self,
        value: &dyn Encode,
        body_bytes_max: u32,
        queue_bytes_max: usize,
    ) -> Result<(), SendError> {
        let full = |queued_bytes| SendError::QueueFull {
            queued_bytes,
            queue_bytes_max,
        };
        if self.queued.len() >= queue_bytes_max {
            return Err(full(self.queued.len()));
        }
        let before = self.queued.len();
        encode_into(&mut self.queued, value, body_bytes_max)?;
        if self.queued.len() > queue_bytes_max {
            self.queued.resize(before, 0);
            return Err(full(before));
        }
        assert!(
            self.queued.len() <= queue_bytes_max,
            "the send queue stays bounded"
        );
        Ok(())
    }

    /// Puts this node's hello before everything queued.
    pub fn queue_hello_first(&mut self, hello: &Hello, body_bytes_max: u32) {
        let mut queued = AlignedVec::<ALIGNMENT>::with_capacity(64 + self.queued.len());
        encode_into(&mut queued, hello, body_bytes_max)
            .expect("a hello is far below any frame limit");
        queued.extend_from_slice(&self.queued);
        self.queued = queued;
    }

    /// Makes the bytes to send now available as [`Link::unsent`]: the rest of
    /// the in-flight buffer, or, once that is done, everything queued (which
    /// becomes the in-flight buffer). Returns their number.
    pub fn prepare_send(&mut self) -> usize {
        if self.in_flight_sent == self.in_flight.len() {
            self.in_flight.clear();
            self.in_flight_sent = 0;
            std::mem::swap(&mut self.in_flight, &mut self.queued);
        }
        self.in_flight.len() - self.in_flight_sent
    }

    /// The unsent rest of the in-flight buffer.
    pub fn unsent(&self) -> &[u8] {
        &self.in_flight[self.in_flight_sent..]
    }

    /// `count` bytes of the in-flight buffer left.
    pub fn sent(&mut self, count: usize) {
        assert!(
            self.in_flight_sent + count <= self.in_flight.len(),
            "sent no more than was in flight"
        );
        self.in_flight_sent += count;
    }

    /// Forgets the connection's stream state after it broke: a partly sent
    /// buffer is dropped (its frames are lost, as on any broken connection);
    /// whole frames still queued wait for the next connection.
    pub fn reset_stream(&mut self, body_bytes_max: u32) {
        self.in_flight.clear();
        self.in_flight_sent = 0;
        self.decoder = Decoder::new(body_bytes_max);
    }

    /// Decodes received bytes and turns the frames into events.
    pub fn receive(
        &mut self,
        buffer: &Arc<AlignedVec<ALIGNMENT>>,
        range: std::ops::Range<usize>,
        cluster_id: u64,
        scratch: &mut ReceiveScratch,
        events: &mut Vec<Event>,
    ) -> Result<(), CloseReason> {
        self.decode_with(cluster_id, scratch, events, |decoder, frames, pool| {
            decoder.feed_with_pool(buffer, range, frames, pool)
        })
    }

    /// Takes `count` bytes received straight into the partial body (the
    /// room the decoder's `partial_room` gave) and turns the frame they
    /// complete into an event.
    ///
    /// # Safety
    /// As [`crate::decode::Decoder::partial_filled`].
    pub unsafe fn receive_direct(
        &mut self,
        count: usize,
        cluster_id: u64,
        scratch: &mut ReceiveScratch,
        events: &mut Vec<Event>,
    ) -> Result<(), CloseReason> {
        self.decode_with(cluster_id, scratch, events, |decoder, frames, pool| {
            // SAFETY: passed on from the caller.
            unsafe { decoder.partial_filled_with_pool(count, frames, pool) }
        })
    }

    /// Runs one decoding step with the scratch frame list and the shared
    /// realignment pool, then turns its frames into events.
    fn decode_with(
        &mut self,
        cluster_id: u64,
        scratch: &mut ReceiveScratch,
        events: &mut Vec<Event>,
        decode: impl FnOnce(
            &mut Decoder,
            &mut Vec<Frame>,
            &mut RealignPool,
        ) -> Result<(), crate::frame::FrameError>,
    ) -> Result<(), CloseReason> {
        let ReceiveScratch {
            frames,
            realign: pool,
        } = scratch;
        frames.clear();
        let decoded = decode(&mut self.decoder, frames, pool);
        self.deliver(frames, cluster_id, events)?;
        decoded.map_err(CloseReason::Frame)
    }

    /// Turns decoded frames into events (a hello names the peer).
    fn deliver(
        &mut self,
        frames: &mut Vec<Frame>,
        cluster_id: u64,
        events: &mut Vec<Event>,
    ) -> Result<(), CloseReason> {
        for frame in frames.drain(..) {
            if let Archived::Hello(hello) = frame.archived() {
                let hello = Hello {
                    cluster_id: hello.cluster_id.to_native(),
                    node: hello.node.to_native(),
                    shard: hello.shard.to_native(),
                };
                if cluster_id != 0 && hello.cluster_id != 0 && hello.cluster_id != cluster_id {
                    return Err(CloseReason::WrongCluster {
                        cluster_id: hello.cluster_id,
                    });
                }
                if hello.node != NodeId(0) {
                    self.peer = Some(hello.node);
                }
                events.push(Event::Identified {
                    connection: self.id,
                    hello,
                });
            } else {
                events.push(Event::Frame {
                    connection: self.id,
                    peer: self.peer,
                    frame,
                });
            }
        }
        Ok(())
    }
}

/// Bits of a [`ConnectionId`] that hold the slot's index (`Config::check`
/// keeps `connections_max` at or below 2^20); the 44 above them hold the
/// slot's generation.
const INDEX_BITS: u32 = 20;
const INDEX_MASK: u64 = (1 << INDEX_BITS) - 1;
/// Generations wrap after 2^44 uses of one slot: at a million connects a
/// second to one slot, after half a year of them. (With 32 bits they
/// wrapped after a day at 50,000 a second, and a handle kept that long
/// would have reached a stranger's connection.)
const GENERATION_MASK: u64 = (1 << (64 - INDEX_BITS)) - 1;

/// The connection table: slots with generations, so handles never alias.
pub(crate) struct Links<S> {
    slots: Vec<Option<Link<S>>>,
    generations: Vec<u64>,
    free: Vec<usize>,
    connections_max: usize,
}

impl<S> Links<S> {
    pub fn new(connections_max: usize) -> Links<S> {
        Links {
            slots: Vec::new(),
            generations: Vec::new(),
            free: Vec::new(),
            connections_max,
        }
    }

    /// Adds a connection; returns its table index.
    pub fn insert(
        &mut self,
        role: Role,
        phase: Phase,
        socket: S,
        body_bytes_max: u32,
    ) -> Result<usize, TransportError> {
        let index = match self.free.pop() {
            Some(index) => index,
            None if self.slots.len() < self.connections_max => {
                self.slots.push(None);
                self.generations.push(0);
                self.slots.len() - 1
            }
            None => {
                return Err(TransportError::TooManyConnections {
                    connections_max: self.connections_max,
                })
            }
        };
        assert!(self.slots[index].is_none(), "a free slot is empty");
        assert!(
            (index as u64) <= INDEX_MASK,
            "connections_max is checked to fit the index bits"
        );
        self.generations[index] = (self.generations[index] + 1) & GENERATION_MASK;
        let id = ConnectionId(self.generations[index] << INDEX_BITS | index as u64);
        self.slots[index] = Some(Link {
            id,
            role,
            phase,
            peer: None,
            decoder: Decoder::new(body_bytes_max),
            queued: AlignedVec::new(),
            in_flight: AlignedVec::new(),
            in_flight_sent: 0,
            socket,
        });
        Ok(index)
    }

    /// Adds an outbound connection to `peer`, down and due to be dialled
    /// at once, with the configured reconnect backoff; returns its handle.
    pub fn insert_outbound(
        &mut self,
        peer: NodeId,
        addr: SocketAddr,
        socket: S,
        config: &Config,
    ) -> Result<ConnectionId, TransportError> {
        let backoff = Backoff::new(
            Duration::from_millis(config.reconnect_delay_min_ms),
            Duration::from_millis(config.reconnect_delay_max_ms),
        );
        let role = Role::Outbound {
            peer,
            addr,
            backoff,
        };
        let phase = Phase::Down {
            retry_at: Instant::now(),
        };
        let index = self.insert(role, phase, socket, config.body_bytes_max)?;
        Ok(self
            .get(index)
            .map(|link| link.id)
            .expect("the slot was filled just above"))
    }

    /// The table index of a live handle.
    pub fn index_of(&self, connection: ConnectionId) -> Option<usize> {
        let index = (connection.0 & INDEX_MASK) as usize;
        let generation = connection.0 >> INDEX_BITS;
        let live = self.slots.get(index)?.as_ref()?;
        (self.generations[index] == generation && live.id == connection).then_some(index)
    }

    /// The link of a live handle.
    pub fn by_id(&self, connection: ConnectionId) -> Option<&Link<S>> {
        self.get(self.index_of(connection)?)
    }

    /// The link of a live handle, to change.
    pub fn by_id_mut(&mut self, connection: ConnectionId) -> Option<&mut Link<S>> {
        let index = self.index_of(connection)?;
        self.get_mut(index)
    }

    pub fn get(&self, index: usize) -> Option<&Link<S>> {
        self.slots.get(index)?.as_ref()
    }

    pub fn get_mut(&mut self, index: usize) -> Option<&mut Link<S>> {
        self.slots.get_mut(index)?.as_mut()
    }

    /// Frees a slot.
    pub fn remove(&mut self, index: usize) -> Option<Link<S>> {
        let link = self.slots.get_mut(index)?.take()?;
        self.free.push(index);
        Some(link)
    }

    /// True when no connection can be added.
    pub fn is_full(&self) -> bool {
        self.free.is_empty() && self.slots.len() >= self.connections_max
    }

    /// The number of table slots ever used (live or free).
    pub fn capacity_used(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::request;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(35));
        let delays: Vec<u128> = (0..4).map(|_| backoff.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![10, 20, 35, 35]);
        backoff.reset();
        assert_eq!(backoff.next_delay().as_millis(), 10);
    }

    /// Adds an open inbound connection; returns its table index.
    fn open_inbound(links: &mut Links<()>) -> usize {
        links
            .insert(Role::Inbound, Phase::Open, (), 1 << 20)
            .expect("room")
    }

    #[test]
    fn a_slot_used_past_32_bits_of_generations_never_aliases_an_old_handle() {
        let mut links = Links::<()>::new(2);
        let index = open_inbound(&mut links);
        let first = links.get(index).expect("live").id;
        links.remove(index);
        // As if the slot had been used 2^32 times since.
        links.generations[index] = u64::from(u32::MAX);
        let again = open_inbound(&mut links);
        assert_eq!(again, index, "the freed slot is reused");
        let id = links.get(index).expect("live").id;
        assert_eq!(links.index_of(id), Some(index));
        assert_ne!(id, first);
        assert_eq!(links.index_of(first), None, "an old handle stays dead");
        // The generation wraps only at 2^44, back to a value old handles never had.
        links.remove(index);
        links.generations[index] = GENERATION_MASK;
        open_inbound(&mut links);
        let wrapped = links.get(index).expect("live").id;
        assert_eq!(wrapped.0 >> INDEX_BITS, 0);
        assert_eq!(links.index_of(wrapped), Some(index));
        assert_eq!(links.index_of(id), None);
    }

    #[test]
    fn the_queue_pushes_back_at_its_limit_and_handles_never_alias() {
        let mut links = Links::<()>::new(2);
        let index = open_inbound(&mut links);
        let link = links.get_mut(index).expect("live");
        let mut accepted = 0;
        while link.enqueue(&request(accepted, 100), 1 << 20, 4096).is_ok() {
            accepted += 1;
        }
        assert!(link.queued.len() <= 4096 && accepted > 10);
        let first = link.prepare_send();
        assert!(first > 0 && link.queued.is_empty());
        link.sent(first);
        assert_eq!(link.prepare_send(), 0, "nothing left to send");
        let id = link.id;
        links.remove(index);
        let again = open_inbound(&mut links);
        assert_eq!(again, index);
        assert_eq!(links.index_of(id), None, "the old handle is dead");
    }
}

//! The portable back end: non-blocking std sockets and edge-triggered epoll.
//!
//! Each read lands in a pooled 16-byte aligned buffer at the stream's offset
//! modulo 16, so a frame that arrives whole in one read lies aligned and is
//! accessed in place; a frame split across reads is assembled by one copy.
//!
//! Invariants:
//! - Every socket is registered with epoll once, edge-triggered, and read
//!   and written until it would block, so no readiness edge is lost (a read
//!   or an accept cut short by its per-turn limit goes on in the next turn,
//!   and a turn whose accepts all failed is followed by another attempt).
//! - A receive buffer is written only while no frame refers to it (its `Arc`
//!   is unique).

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rkyv::util::AlignedVec;

use super::link::{Link, Links, Phase, ReceiveScratch, Role};
use super::{
    sys, Backend, CloseReason, Config, ConnectionId, ConnectionLog, Event, SendError, Transport,
    TransportError, ACCEPT_RETRY_DELAY,
};
use crate::bytes::{page_start, receive_buffer, ALIGNMENT};
use crate::frame::Encode;
use crate::wire::NodeId;

const LISTENER_TOKEN: u64 = u64::MAX;
/// Receive buffers kept for reuse; more are allocated while frames hold these.
const RECEIVE_BUFFERS_POOLED_MAX: usize = 256;
/// Connections accepted per turn, so a flood of connects cannot starve reads.
const ACCEPTS_PER_TURN_MAX: usize = 64;
/// Reads of one connection per turn, so a peer that sends without pause
/// cannot hold the turn (and every frame it decodes) for as long as it likes.
/// The reads that go on from the last turn count, so a connection whose new
/// readiness arrives in the same turn is not read a second time over.
const READS_PER_TURN_MAX: usize = 16;

/// A socket, where its stream stands modulo the alignment, and how many
/// reads it had in which turn.
#[derive(Default)]
pub(crate) struct PortableSocket {
    stream: Option<TcpStream>,
    stream_phase: usize,
    reads_turn: u64,
    reads: usize,
}

/// The portable transport.
pub struct PortableTransport {
    config: Config,
    epoll: OwnedFd,
    listener: Option<TcpListener>,
    local_addr: Option<SocketAddr>,
    links: Links<PortableSocket>,
    buffers: Vec<Arc<AlignedVec<ALIGNMENT>>>,
    scratch: ReceiveScratch,
    ready: Vec<libc::epoll_event>,
    written: bool,
    /// The last accept stopped at `ACCEPTS_PER_TURN_MAX` with connections
    /// possibly left in the backlog: the listener's edge is spent, so the
    /// next turn accepts again without waiting for one.
    accept_pending: bool,
    /// When to accept again after accepts that all failed.
    accept_retry_at: Option<Instant>,
    /// Connections whose last read stopped at `READS_PER_TURN_MAX` before
    /// the socket was empty: their edge is spent, so the next turn reads on.
    read_pending: Vec<usize>,
    /// Turns so far: a socket's reads count within the turn it names.
    turns: u64,
    /// Lines about closed and refused connections, rate-limited.
    log: ConnectionLog,
}

fn io_error(context: &'static str) -> impl FnOnce(std::io::Error) -> TransportError {
    move |source| TransportError::Io { context, source }
}

impl PortableTransport {
    /// Opens the transport and its listener, if configured.
    ///
    /// # Errors
    /// Creating epoll or binding the listener failed.
    pub fn open(config: Config) -> Result<PortableTransport, TransportError> {
        config.check()?;
        // SAFETY: epoll_create1 has no memory preconditions; the result is checked.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(TransportError::Io {
                context: "epoll_create1",
                source: std::io::Error::last_os_error(),
            });
        }
        // SAFETY: fd is a fresh epoll descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let mut transport = PortableTransport {
            links: Links::new(config.connections_max),
            config,
            epoll,
            listener: None,
            local_addr: None,
            buffers: Vec::new(),
            scratch: ReceiveScratch::new(),
            ready: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
            written: false,
            accept_pending: false,
            accept_retry_at: None,
            read_pending: Vec::new(),
            turns: 0,
            log: ConnectionLog::default(),
        };
        if let Some(address) = transport.config.listen {
            let listener = TcpListener::bind(address).map_err(io_error("bind"))?;
            listener
                .set_nonblocking(true)
                .map_err(io_error("listener non-blocking"))?;
            transport.local_addr = Some(listener.local_addr().map_err(io_error("local_addr"))?);
            transport
                .watch(listener.as_raw_fd(), LISTENER_TOKEN)
                .map_err(io_error("epoll_ctl"))?;
            transport.listener = Some(listener);
        }
        Ok(transport)
    }

    fn watch(&self, fd: i32, token: u64) -> std::io::Result<()> {
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32,
            u64: token,
        };
        // SAFETY: both descriptors are open; the event points to a live struct.
        let result = unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd,
                &raw mut event,
            )
        };
        if result < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Starts (re)dialling an outbound connection.
    fn dial(&mut self, index: usize, now: Instant, events: &mut Vec<Event>) {
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        let Role::Outbound { addr, .. } = link.role else {
            return;
        };
        match sys::connect_nonblocking(addr) {
            Ok(stream) => {
                let fd = stream.as_raw_fd();
                link.socket = PortableSocket {
                    stream: Some(stream),
                    ..PortableSocket::default()
                };
                link.phase = Phase::Connecting;
                if let Err(error) = self.watch(fd, index as u64) {
                    self.broken(index, CloseReason::Io(error.to_string()), now, events);
                }
            }
            Err(error) => self.broken(index, CloseReason::Io(error.to_string()), now, events),
        }
    }

    /// A connection broke or was refused: inbound ones go, outbound ones wait
    /// for a redial. A `Closed` event is reported for connections that were open.
    fn broken(&mut self, index: usize, reason: CloseReason, now: Instant, events: &mut Vec<Event>) {
        let body_bytes_max = self.config.body_bytes_max;
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        let was_open = link.phase == Phase::Open;
        link.socket = PortableSocket::default();
        link.reset_stream(body_bytes_max);
        let id = link.id;
        match &mut link.role {
            Role::Outbound { backoff, .. } if reason != CloseReason::Local => {
                link.phase = Phase::Down {
                    retry_at: now + backoff.next_delay(),
                };
            }
            _ => {
                self.links.remove(index);
            }
        }
        if was_open {
            self.log.close(id, &reason);
            events.push(Event::Closed {
                connection: id,
                reason,
            });
        }
    }

    /// Writes everything that waits, until done or the socket is full.
    fn flush(&mut self, index: usize, now: Instant, events: &mut Vec<Event>) {
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        if link.phase != Phase::Open {
            return;
        }
        while link.prepare_send() > 0 {
            let Some(stream) = &link.socket.stream else {
                return;
            };
            let mut stream: &TcpStream = stream;
            match stream.write(link.unsent()) {
                Ok(count) => {
                    link.sent(count);
                    self.written = true;
                }
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => {
                    return self.broken(index, CloseReason::Io(error.to_string()), now, events)
                }
            }
        }
    }

    /// A receive buffer no frame refers to, taken out of the pool.
    fn take_buffer(&mut self) -> Arc<AlignedVec<ALIGNMENT>> {
        if let Some(at) = self
            .buffers
            .iter()
            .position(|buffer| Arc::strong_count(buffer) == 1)
        {
            return self.buffers.swap_remove(at);
        }
        receive_buffer(self.config.receive_buffer_bytes)
    }

    /// Returns a receive buffer to the pool (frames may still refer to it).
    fn give_back(&mut self, buffer: Arc<AlignedVec<ALIGNMENT>>) {
        if self.buffers.len() < RECEIVE_BUFFERS_POOLED_MAX {
            self.buffers.push(buffer);
        }
    }

    /// Reads until the socket would block, or until the connection had
    /// `READS_PER_TURN_MAX` reads in this turn (then the next turn reads on).
    fn read(&mut self, index: usize, now: Instant, events: &mut Vec<Event>) {
        let turn = self.turns;
        loop {
            let Some(link) = self.links.get_mut(index) else {
                return;
            };
            let socket = &mut link.socket;
            if socket.reads_turn != turn {
                socket.reads_turn = turn;
                socket.reads = 0;
            }
            if socket.reads == READS_PER_TURN_MAX {
                if !self.read_pending.contains(&index) {
                    self.read_pending.push(index);
                }
                return;
            }
            socket.reads += 1;
            let mut buffer = self.take_buffer();
            let Some(link) = self.links.get_mut(index) else {
                return;
            };
            let Some(stream) = &link.socket.stream else {
                return;
            };
            // From the buffer's first page on (see `receive_buffer`), at the
            // stream's phase so frames lie aligned.
            let page = page_start(&buffer);
            let start = page + link.socket.stream_phase;
            let end = page + self.config.receive_buffer_bytes;
            let target = Arc::get_mut(&mut buffer)
                .expect("take_buffer hands out buffers no frame refers to");
            let mut reader: &TcpStream = stream;
            // A read that brought nothing returns its buffer to the pool.
            let count = match reader.read(&mut target.as_mut_slice()[start..end]) {
                Ok(0) => {
                    self.give_back(buffer);
                    return self.broken(index, CloseReason::EndOfStream, now, events);
                }
                Ok(count) => count,
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    return self.give_back(buffer)
                }
                Err(error) if error.kind() == ErrorKind::Interrupted => {
                    self.give_back(buffer);
                    continue;
                }
                Err(error) => {
                    self.give_back(buffer);
                    return self.broken(index, CloseReason::Io(error.to_string()), now, events);
                }
            };
            link.socket.stream_phase = (link.socket.stream_phase + count) % ALIGNMENT;
            let cluster_id = self.config.cluster_id;
            let received = link.receive(
                &buffer,
                start..start + count,
                cluster_id,
                &mut self.scratch,
                events,
            );
            self.give_back(buffer);
            if let Err(reason) = received {
                return self.broken(index, reason, now, events);
            }
        }
    }

    fn accept(&mut self, now: Instant, events: &mut Vec<Event>) {
        self.accept_pending = false;
        self.accept_retry_at = None;
        let mut accepted_any = false;
        for _ in 0..ACCEPTS_PER_TURN_MAX {
            let Some(listener) = &self.listener else {
                return;
            };
            let stream = match listener.accept() {
                Ok((stream, _)) => stream,
                Err(error) if error.kind() == ErrorKind::WouldBlock => return,
                Err(_) => continue,
            };
            accepted_any = true;
            let setup = stream
                .set_nonblocking(true)
                .and_then(|()| sys::set_nodelay(&stream));
            if setup.is_err() {
                continue;
            }
            let fd = stream.as_raw_fd();
            let socket = PortableSocket {
                stream: Some(stream),
                ..PortableSocket::default()
            };
            let Ok(index) = self.links.insert(
                Role::Inbound,
                Phase::Open,
                socket,
                self.config.body_bytes_max,
            ) else {
                self.log.refused();
                continue;
            };
            if self.watch(fd, index as u64).is_err() {
                self.links.remove(index);
                continue;
            }
            let connection = self
                .links
                .get(index)
                .map(|link| link.id)
                .expect("inserted above");
            events.push(Event::Accepted { connection });
        }
        // Edge-triggered: no new edge comes for connections already in the
        // backlog, so the next turn goes on accepting; after a run of
        // failures alone (such as running out of descriptors) a later one does.
        if accepted_any {
            self.accept_pending = true;
        } else {
            self.accept_retry_at = Some(now + ACCEPT_RETRY_DELAY);
        }
    }

    /// An outbound connect finished (or failed).
    fn connected(&mut self, index: usize, now: Instant, events: &mut Vec<Event>) {
        let hello = self.config.hello();
        let body_bytes_max = self.config.body_bytes_max;
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        let failure = match &link.socket.stream {
            Some(stream) => match stream.take_error() {
                Ok(None) => stream.peer_addr().err(),
                Ok(Some(error)) | Err(error) => Some(error),
            },
            None => return,
        };
        if let Some(error) = failure {
            if error.kind() == ErrorKind::NotConnected {
                return; // still connecting
            }
            return self.broken(index, CloseReason::Io(error.to_string()), now, events);
        }
        let Role::Outbound { peer, backoff, .. } = &mut link.role else {
            return;
        };
        backoff.reset();
        let peer = *peer;
        link.phase = Phase::Open;
        link.queue_hello_first(&hello, body_bytes_max);
        events.push(Event::Connected {
            connection: link.id,
            peer,
        });
        self.flush(index, now, events);
    }

    fn handle_ready(&mut self, token: u64, flags: u32, now: Instant, events: &mut Vec<Event>) {
        if token == LISTENER_TOKEN {
            return self.accept(now, events);
        }
        let index = token as usize;
        let Some(link) = self.links.get(index) else {
            return;
        };
        if link.phase == Phase::Connecting {
            self.connected(index, now, events);
        }
        let readable = (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
        if flags & readable != 0 {
            self.read(index, now, events);
        }
        if flags & libc::EPOLLOUT as u32 != 0 {
            self.flush(index, now, events);
        }
    }

    /// The wait for this turn: none when events are already waiting, and no
    /// longer than the next redial.
    fn wait(&self, timeout: Duration, now: Instant, events: &[Event]) -> Duration {
        if !events.is_empty() || self.accept_pending || !self.read_pending.is_empty() {
            return Duration::ZERO;
        }
        let mut wait = timeout;
        if let Some(retry_at) = self.accept_retry_at {
            wait = wait.min(retry_at.saturating_duration_since(now));
        }
        for index in 0..self.links.capacity_used() {
            if let Some(Link {
                phase: Phase::Down { retry_at },
                ..
            }) = self.links.get(index)
            {
                wait = wait.min(retry_at.saturating_duration_since(now));
            }
        }
        wait
    }

    /// Waits up to `wait_ms` for readiness; returns how many entries of
    /// `ready` it filled (none when a signal interrupted the wait).
    fn epoll_wait(&mut self, wait_ms: i32) -> Result<usize, TransportError> {
        let capacity = self.ready.len() as i32;
        // SAFETY: `ready` has room for `capacity` events and lives across the call.
        let count = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                self.ready.as_mut_ptr(),
                capacity,
                wait_ms,
            )
        };
        if count >= 0 {
            return Ok(count as usize);
        }
        let error = std::io::Error::last_os_error();
        if error.kind() == ErrorKind::Interrupted {
            return Ok(0);
        }
        Err(TransportError::Io {
            context: "epoll_wait",
            source: error,
        })
    }
}

impl Transport for PortableTransport {
    fn backend(&self) -> Backend {
        Backend::Portable
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    fn connect(&mut self, peer: NodeId, addr: SocketAddr) -> Result<ConnectionId, TransportError> {
        self.links
            .insert_outbound(peer, addr, PortableSocket::default(), &self.config)
    }

    fn send(&mut self, connection: ConnectionId, value: &dyn Encode) -> Result<(), SendError> {
        let link = self
            .links
            .by_id_mut(connection)
            .ok_or(SendError::UnknownConnection { connection })?;
        link.enqueue(
            value,
            self.config.body_bytes_max,
            self.config.send_queue_bytes_max,
        )
    }

    fn queued_bytes(&self, connection: ConnectionId) -> usize {
        self.links
            .by_id(connection)
            .map_or(0, |link| link.queued.len() + link.unsent().len())
    }

    fn close(&mut self, connection: ConnectionId) {
        if let Some(index) = self.links.index_of(connection) {
            self.links.remove(index);
        }
    }

    fn turn(&mut self, timeout: Duration, events: &mut Vec<Event>) -> Result<(), TransportError> {
        let now = Instant::now();
        self.written = false;
        self.turns += 1;
        if self.accept_pending || self.accept_retry_at.is_some_and(|at| at <= now) {
            self.accept(now, events);
        }
        // A slot freed and reused since costs one read that would block.
        for index in std::mem::take(&mut self.read_pending) {
            if self
                .links
                .get(index)
                .is_some_and(|link| link.phase == Phase::Open)
            {
                self.read(index, now, events);
            }
        }
        for index in 0..self.links.capacity_used() {
            match self.links.get(index).map(|link| link.phase) {
                Some(Phase::Down { retry_at }) if retry_at <= now => self.dial(index, now, events),
                Some(Phase::Open) => self.flush(index, now, events),
                _ => {}
            }
        }
        // Handing bytes to the kernel is progress the caller hears of at once
        // (as io_uring reports a send's completion), so it can queue more.
        let wait = if self.written {
            Duration::ZERO
        } else {
            self.wait(timeout, now, events)
        };
        let busy_poll = Duration::from_micros(u64::from(self.config.busy_poll_us));
        let polls = !busy_poll.is_zero() && !wait.is_zero();
        let (mut count, mut polled_for) = (0, Duration::ZERO);
        if polls {
            let (started, budget) = (Instant::now(), wait.min(busy_poll));
            while count == 0 && started.elapsed() < budget {
                count = self.epoll_wait(0)?;
            }
            polled_for = started.elapsed();
        }
        if count == 0 {
            let rest = wait.saturating_sub(polled_for);
            count = self.epoll_wait(epoll_timeout_ms(rest, polls))?;
        }
        let now = Instant::now();
        for at in 0..count {
            let libc::epoll_event {
                events: flags,
                u64: token,
            } = self.ready[at];
            self.handle_ready(token, flags, now, events);
        }
        Ok(())
    }
}

/// `epoll_wait`'s timeout, in whole milliseconds, for the `rest` of a
/// turn's wait. A turn that did not poll rounds up (it sleeps rather than
/// spin through a sub-millisecond wait). After polling the rest rounds
/// down: rounded up, a turn would sleep up to a millisecond past its
/// timeout or a redial's deadline (a 1.5 ms turn polling 1.4 ms took
/// 2.4 ms), and a turn may always end sooner.
fn epoll_timeout_ms(rest: Duration, polled: bool) -> i32 {
    let milliseconds = if polled {
        rest.as_millis()
    } else {
        rest.as_micros().div_ceil(1000)
    };
    i32::try_from(milliseconds).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bytes::PAGE_BYTES;
    use crate::frame::{encode_into, Archived};
    use crate::samples::request;
    use crate::wire::Hello;

    /// Reads land in `[page_start + phase, page_start + receive_buffer_bytes)`
    /// of their buffer and nowhere else: after a stream larger than many
    /// receive buffers, every byte of every pooled buffer outside that
    /// window is still the zero it was allocated with, and some reads did
    /// fill the window to its end.
    #[test]
    fn reads_stay_within_receive_buffer_bytes_from_the_page_start() {
        const READ_BYTES: usize = 4096;
        const REQUESTS: u64 = 60;
        let mut config = Config::new(NodeId(1));
        config.listen = Some("127.0.0.1:0".parse().expect("an address"));
        config.receive_buffer_bytes = READ_BYTES;
        let mut transport = PortableTransport::open(config).expect("opens");
        let address = transport.local_addr().expect("listening");
        let mut stream = AlignedVec::<ALIGNMENT>::new();
        let hello = Hello {
            cluster_id: 0,
            node: NodeId(2),
            shard: 0,
        };
        encode_into(&mut stream, &hello, 1 << 20).expect("encodes");
        for seq in 0..REQUESTS {
            // Lengths off the 16-byte grid and off READ_BYTES.
            encode_into(
                &mut stream,
                &request(seq, 2_500 + seq as usize * 7),
                1 << 20,
            )
            .expect("encodes");
        }
        let writer = std::thread::spawn(move || {
            let mut client = TcpStream::connect(address).expect("connects");
            client.write_all(&stream).expect("writes");
            client
        });
        let started = Instant::now();
        let mut seqs = Vec::new();
        while seqs.len() < REQUESTS as usize {
            assert!(started.elapsed() < Duration::from_secs(30), "got {seqs:?}");
            let mut events = Vec::new();
            transport
                .turn(Duration::from_millis(1), &mut events)
                .expect("turns");
            for event in events {
                if let Event::Frame { frame, .. } = event {
                    if let Archived::Request(request) = frame.archived() {
                        seqs.push(request.seq.to_native().0);
                    }
                }
            }
        }
        assert_eq!(seqs, (0..REQUESTS).collect::<Vec<_>>());
        let _client = writer.join().expect("the writer finishes");
        assert!(!transport.buffers.is_empty());
        let mut filled_to_the_end = 0;
        for buffer in &transport.buffers {
            let page = page_start(buffer);
            assert_eq!((buffer.as_ptr() as usize + page) % PAGE_BYTES, 0);
            let (before, rest) = buffer.split_at(page);
            let (window, after) = rest.split_at(READ_BYTES);
            assert!(
                before.iter().all(|&byte| byte == 0),
                "written before the page"
            );
            assert!(
                after.iter().all(|&byte| byte == 0),
                "written past receive_buffer_bytes"
            );
            filled_to_the_end += usize::from(window[READ_BYTES - 64..].iter().any(|&b| b != 0));
        }
        assert!(filled_to_the_end > 0, "some read filled its whole window");
    }

    /// A read that ends the stream gives its buffer back to the pool: after
    /// peers that each send a hello and close, the transport still holds
    /// the one buffer it read into, the same allocation every time.
    #[test]
    fn a_read_at_end_of_stream_returns_its_buffer_to_the_pool() {
        let mut config = Config::new(NodeId(1));
        config.listen = Some("127.0.0.1:0".parse().expect("an address"));
        let mut transport = PortableTransport::open(config).expect("opens");
        let address = transport.local_addr().expect("listening");
        let mut hello_bytes = AlignedVec::<ALIGNMENT>::new();
        let hello = Hello {
            cluster_id: 0,
            node: NodeId(2),
            shard: 0,
        };
        encode_into(&mut hello_bytes, &hello, 1 << 20).expect("encodes");
        let mut pooled = None;
        for peer in 0..5 {
            let mut client = TcpStream::connect(address).expect("connects");
            client.write_all(&hello_bytes).expect("writes");
            drop(client);
            let (started, mut closed) = (Instant::now(), false);
            while !closed {
                assert!(started.elapsed() < Duration::from_secs(30), "peer {peer}");
                let mut events = Vec::new();
                transport
                    .turn(Duration::from_millis(10), &mut events)
                    .expect("turns");
                closed = events.iter().any(|event| {
                    matches!(
                        event,
                        Event::Closed {
                            reason: CloseReason::EndOfStream,
                            ..
                        }
                    )
                });
            }
            assert_eq!(transport.buffers.len(), 1, "peer {peer}");
            let address = transport.buffers[0].as_ptr();
            assert_eq!(*pooled.get_or_insert(address), address, "peer {peer}");
        }
    }

    #[test]
    fn the_rest_of_a_wait_rounds_down_after_polling_and_up_otherwise() {
        let micros = Duration::from_micros;
        assert_eq!(epoll_timeout_ms(micros(100), true), 0);
        assert_eq!(epoll_timeout_ms(micros(100), false), 1);
        assert_eq!(epoll_timeout_ms(micros(1_500), true), 1);
        assert_eq!(epoll_timeout_ms(micros(1_500), false), 2);
        assert_eq!(epoll_timeout_ms(micros(2_000), true), 2);
        assert_eq!(epoll_timeout_ms(micros(2_000), false), 2);
        assert_eq!(epoll_timeout_ms(Duration::MAX, false), i32::MAX);
    }
}

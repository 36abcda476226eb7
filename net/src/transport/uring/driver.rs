//! The standalone driver: a ring of its own, set up the way a shard sets up
//! its ring, running one [`UringTransport`]. Tests and benchmarks use it.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use io_uring::{opcode, types, IoUring, Probe};

use super::{uring_error, RingResources, UringTransport};
use crate::frame::Encode;
use crate::transport::{
    Backend, Config, ConnectionId, Event, SendError, SqPoll, Transport, TransportError,
};
use crate::wire::NodeId;

/// Submission queue entries of the driver's ring.
const RING_ENTRIES: u32 = 1024;
/// Completion queue entries: multishot receives post many completions per
/// submission.
const COMPLETION_ENTRIES: u32 = 8 * RING_ENTRIES;

/// True when this kernel lets us build the ring the transport needs
/// (`SINGLE_ISSUER | DEFER_TASKRUN`) and supports every operation it uses.
/// Probed once per process.
#[must_use]
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| probe().is_ok())
}

fn probe() -> std::io::Result<()> {
    let ring: IoUring = IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(8)?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    let needed = [
        opcode::AcceptMulti::CODE,
        opcode::RecvMulti::CODE,
        opcode::SendZc::CODE,
        opcode::Connect::CODE,
        opcode::Shutdown::CODE,
        opcode::Close::CODE,
    ];
    if needed.iter().all(|&code| probe.is_supported(code)) {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "an io_uring operation is missing",
        ))
    }
}

/// The completion tag of the driver's own timer (outside the transport's tags).
const TIMER_TAG: u64 = u64::MAX;

/// The driver's timer: one `IORING_OP_TIMEOUT` kept armed across turns, so
/// that a turn's wait needs no timer of its own. Arming a kernel timer for
/// every wait (the `io_uring_enter` timeout argument) cost about 1 µs per
/// round trip here (README); this one is armed at most once per
/// wait-length, and a turn may end when it fires (earlier than its own
/// timeout, which the contract allows).
struct Timer {
    /// The armed timeout's length (it fires at most this long from now);
    /// `None` when none is armed.
    armed_for: Option<Duration>,
    /// The armed timeout's length; the kernel reads it when the timeout is
    /// submitted, and it stays put (boxed) until then.
    timespec: Box<types::Timespec>,
}

/// Completions a coalesced wait gathers before it wakes (it wakes at the
/// first one once `Config::coalesce_wait_us` has passed).
const COALESCE_COMPLETIONS: usize = 8;

/// A ring of its own running one transport.
pub struct UringDriver {
    transport: UringTransport,
    ring: IoUring,
    timer: Timer,
    /// The minimum wait of a coalesced wait, in microseconds; 0 when
    /// configured so or when the kernel lacks `IORING_FEAT_MIN_TIMEOUT`.
    coalesce_wait_us: u32,
    coalesced_waits: u64,
    /// How long a turn polls before it sleeps (`Config::busy_poll_us`).
    busy_poll: Duration,
    busy_polls_found: u64,
}

impl UringDriver {
    /// Builds and registers a ring (`SINGLE_ISSUER | DEFER_TASKRUN`, or
    /// SQPOLL without `DEFER_TASKRUN` when configured) and opens the transport.
    ///
    /// # Errors
    /// [`TransportError::Uring`] when the kernel refuses io_uring or a setup step.
    pub fn open(config: Config) -> Result<UringDriver, TransportError> {
        config.check()?;
        if !available() {
            let error = probe()
                .err()
                .unwrap_or_else(|| std::io::Error::other("probe failed"));
            return Err(TransportError::Uring {
                context: "probe",
                source: error,
            });
        }
        let mut builder = IoUring::builder();
        builder
            .setup_single_issuer()
            .setup_cqsize(COMPLETION_ENTRIES);
        match config.sqpoll {
            SqPoll::Off => builder.setup_defer_taskrun().setup_taskrun_flag(),
            SqPoll::On { idle_ms } => builder.setup_sqpoll(idle_ms),
        };
        let ring = builder.build(RING_ENTRIES).map_err(uring_error("setup"))?;
        let (files, tags) = RingResources::needed(&config);
        ring.submitter()
            .register_files_sparse(files)
            .map_err(uring_error("register files"))?;
        let resources = RingResources {
            files: 0..files,
            buffer_group: 0,
            tags: 0..tags,
        };
        let coalesce_wait_us = if ring.params().is_feature_min_timeout() {
            config.coalesce_wait_us
        } else {
            0
        };
        let busy_poll = Duration::from_micros(u64::from(config.busy_poll_us));
        let transport = UringTransport::new(config, resources, &ring.submitter())?;
        let timer = Timer {
            armed_for: None,
            timespec: Box::new(types::Timespec::new()),
        };
        Ok(UringDriver {
            transport,
            ring,
            timer,
            coalesce_wait_us,
            coalesced_waits: 0,
            busy_poll,
            busy_polls_found: 0,
        })
    }

    /// The transport, for what the [`Transport`] trait does not offer.
    #[must_use]
    pub fn transport(&self) -> &UringTransport {
        &self.transport
    }

    /// Whether waits coalesce completions (configured, and the kernel can).
    #[must_use]
    pub fn coalesces(&self) -> bool {
        self.coalesce_wait_us > 0
    }

    /// Waits that let the kernel gather completions so far (for tests and
    /// diagnostics).
    #[must_use]
    pub fn coalesced_waits(&self) -> u64 {
        self.coalesced_waits
    }

    /// Turns whose busy polling found what they waited for: any completion,
    /// the driver's timer and zero-copy notifications too (for tests and
    /// diagnostics).
    #[must_use]
    pub fn busy_polls_found(&self) -> u64 {
        self.busy_polls_found
    }

    fn wait_for(&self, timeout: Duration, now: Instant) -> Duration {
        if self.transport.has_events() {
            return Duration::ZERO;
        }
        match self.transport.next_deadline() {
            Some(deadline) => timeout.min(deadline.saturating_duration_since(now)),
            None => timeout,
        }
    }
}

/// How a turn waits.
enum Wait {
    /// Not at all: submit and take what is there.
    None,
    /// Until a completion, at the latest the armed timer's.
    ForTimer,
    /// Until a completion or this long (a timer for this wait alone).
    For(Duration),
}

impl Timer {
    /// Decides how a turn that may wait `wait` waits: on the armed timer
    /// when it fires no later than `wait` from now (it was armed for no
    /// longer), after arming one when none is armed, else with a timer of
    /// its own.
    fn plan(
        &mut self,
        wait: Duration,
        sq: &mut io_uring::SubmissionQueue<'_>,
        submitter: &io_uring::Submitter<'_>,
    ) -> Result<Wait, TransportError> {
        if wait.is_zero() {
            return Ok(Wait::None);
        }
        match self.armed_for {
            Some(armed_for) if armed_for <= wait => return Ok(Wait::ForTimer),
            Some(_) => return Ok(Wait::For(wait)),
            None => {}
        }
        *self.timespec = types::Timespec::from(wait);
        let entry = opcode::Timeout::new(&raw const *self.timespec)
            .build()
            .user_data(TIMER_TAG);
        // SAFETY: the timespec is boxed in the driver, which outlives the
        // submission (the kernel copies it when the entry is submitted).
        while unsafe { sq.push(&entry) }.is_err() {
            sq.sync();
            submitter.submit().map_err(uring_error("submit"))?;
            sq.sync();
        }
        self.armed_for = Some(wait);
        Ok(Wait::ForTimer)
    }
}

impl Drop for UringDriver {
    /// Releases the transport and takes the completions of what it
    /// cancelled (for up to a second), so that dropping it frees its
    /// buffers instead of leaking them.
    fn drop(&mut self) {
        self.transport.release(&self.ring.submitter());
        self.drain_released(Duration::from_secs(1), |_| {});
    }
}

impl UringDriver {
    /// After `release`: enters the ring and hands the transport what
    /// completes (each completion shown to `seen` first) until it is
    /// drained or `within` has passed; returns whether it drained.
    fn drain_released(
        &mut self,
        within: Duration,
        mut seen: impl FnMut(&io_uring::cqueue::Entry),
    ) -> bool {
        let deadline = Instant::now() + within;
        while !self.transport.is_drained() {
            if Instant::now() >= deadline {
                return false;
            }
            let (submitter, _, mut cq) = self.ring.split();
            let wait = types::Timespec::new().nsec(10_000_000);
            let _ = submitter.submit_with_args(1, &types::SubmitArgs::new().timespec(&wait));
            cq.sync();
            for cqe in &mut cq {
                seen(&cqe);
                self.transport.complete_released(&cqe);
            }
        }
        true
    }
}

impl Transport for UringDriver {
    fn backend(&self) -> Backend {
        Backend::IoUring
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        self.transport.local_addr()
    }

    fn connect(&mut self, peer: NodeId, addr: SocketAddr) -> Result<ConnectionId, TransportError> {
        self.transport.connect(peer, addr)
    }

    fn send(&mut self, connection: ConnectionId, value: &dyn Encode) -> Result<(), SendError> {
        self.transport.send(connection, value)
    }

    fn queued_bytes(&self, connection: ConnectionId) -> usize {
        self.transport.queued_bytes(connection)
    }

    fn close(&mut self, connection: ConnectionId) {
        self.transport.close(connection);
    }

    fn turn(&mut self, timeout: Duration, events: &mut Vec<Event>) -> Result<(), TransportError> {
        let now = Instant::now();
        let wait = self.wait_for(timeout, now);
        let (submitter, mut sq, mut cq) = self.ring.split();
        while !self.transport.prepare(now, &submitter, &mut sq) {
            sq.sync();
            submitter.submit().map_err(uring_error("submit"))?;
        }
        let outlook = self.transport.take_outlook();
        let mut wait = if outlook.room_made {
            Duration::ZERO
        } else {
            wait
        };
        // Sends that leave at once complete inside the enter that submits
        // them: a turn waits for one completion beyond them, so that a round
        // trip costs one enter.
        let want = 1 + outlook.completions_at_submit as usize;
        let mut polled = false;
        if !self.busy_poll.is_zero() && !wait.is_zero() {
            let started = Instant::now();
            polled = busy_poll(&submitter, &mut sq, &mut cq, want, wait.min(self.busy_poll))?;
            wait = if polled {
                self.busy_polls_found += 1;
                Duration::ZERO
            } else {
                wait.saturating_sub(started.elapsed())
            };
        }
        // While frames stream in and nothing of ours waits, let the kernel
        // gather a few completions before it wakes us: a minimum wait,
        // after which the first completion ends the wait, so a lone frame
        // is not held. It needs a timeout of its own (without one the
        // kernel ends the wait at the minimum, completions or not). The
        // minimum is never longer than the turn may wait: the kernel arms
        // only the minimum's timer until that fires, so a longer minimum
        // would outlast the turn's timeout (or a redial's deadline).
        let min_wait_us = u32::try_from(wait.as_micros())
            .unwrap_or(u32::MAX)
            .min(self.coalesce_wait_us);
        let coalesce = outlook.coalescable && min_wait_us > 0;
        let wait = if coalesce {
            Wait::For(wait)
        } else {
            self.timer.plan(wait, &mut sq, &submitter)?
        };
        sq.sync();
        let (want, min_wait_us) = if coalesce {
            self.coalesced_waits += 1;
            (COALESCE_COMPLETIONS, min_wait_us)
        } else {
            (want, 0)
        };
        let entered = match wait {
            // Polling found the completions; nothing is left to submit.
            Wait::None if polled => Ok(0),
            Wait::None => submitter.submit(),
            Wait::ForTimer => submitter.submit_and_wait(want),
            Wait::For(wait) => {
                let timespec = types::Timespec::from(wait);
                let args = types::SubmitArgs::new()
                    .timespec(&timespec)
                    .min_wait_usec(min_wait_us);
                submitter.submit_with_args(want, &args)
            }
        };
        tolerate(entered, "submit_and_wait")?;
        cq.sync();
        for cqe in &mut cq {
            if cqe.user_data() == TIMER_TAG {
                self.timer.armed_for = None;
            } else if self.transport.owns(cqe.user_data()) {
                self.transport.complete(&cqe, &submitter);
            }
        }
        self.transport.drain_events(events);
        Ok(())
    }
}

/// An enter's result, with what is no failure (a timeout that passed, a
/// signal, a completion queue to drain first) taken as success.
fn tolerate(entered: std::io::Result<usize>, context: &'static str) -> Result<(), TransportError> {
    match entered {
        Ok(_) => Ok(()),
        Err(error)
            if matches!(
                error.raw_os_error(),
                Some(libc::ETIME | libc::EINTR | libc::EBUSY)
            ) =>
        {
            Ok(())
        }
        Err(error) => Err(TransportError::Uring {
            context,
            source: error,
        }),
    }
}

/// Polls between clock reads: a poll is two loads from the shared rings,
/// a clock read (vDSO) several times that, so the budget is checked every
/// few polls (it may be overrun by that much, well under a microsecond).
const POLLS_PER_CLOCK_READ: u32 = 16;

/// Busy polling: submits what is queued, then looks for `want` completions
/// without sleeping, entering the ring only when the kernel flags deferred
/// task work (`IORING_SQ_TASKRUN`: an arrival whose completion waits for
/// us to post it), until they are there (true) or `budget` has passed.
/// [`UringDriver`] polls its ring with it; a runtime that owns a shard's
/// ring (set up with `TASKRUN_FLAG` beside `DEFER_TASKRUN`) polls it the
/// same way. Completions are left in the queue for the caller.
///
/// # Errors
/// [`TransportError::Uring`] when an enter fails (not for a signal, a
/// timeout or a completion queue to drain first).
pub fn busy_poll(
    submitter: &io_uring::Submitter<'_>,
    sq: &mut io_uring::SubmissionQueue<'_>,
    cq: &mut io_uring::CompletionQueue<'_>,
    want: usize,
    budget: Duration,
) -> Result<bool, TransportError> {
    sq.sync();
    if !sq.is_empty() || sq.taskrun() {
        tolerate(submitter.submit(), "submit")?;
    }
    let started = Instant::now();
    loop {
        for _ in 0..POLLS_PER_CLOCK_READ {
            if sq.taskrun() {
                // An enter without a wait runs the deferred task work.
                tolerate(submitter.submit(), "submit")?;
            }
            cq.sync();
            if cq.len() >= want {
                return Ok(true);
            }
            std::hint::spin_loop();
        }
        if started.elapsed() >= budget {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::samples::request;
    use crate::transport::Event;

    /// A transport whose connections have receives parked (one of them a
    /// one-shot receive of large frames) releases cleanly: every operation
    /// cancelled, so dropping it frees its memory instead of leaking it.
    #[test]
    fn release_cancels_parked_receives() {
        if !available() {
            return eprintln!("io_uring unavailable here, skipped");
        }
        let config = |node| {
            let mut config = Config::new(NodeId(node));
            config.listen = Some("127.0.0.1:0".parse().expect("an address"));
            config.connections_max = 8;
            config
        };
        let mut server = UringDriver::open(config(2)).expect("opens");
        let mut client = UringDriver::open(config(1)).expect("opens");
        let address = server.transport().local_addr().expect("listening");
        let connection = client.connect(NodeId(2), address).expect("room");
        let started = Instant::now();
        let (mut events, mut answers) = (Vec::new(), Vec::new());
        let mut sent = 0;
        while answers.len() < 4 {
            assert!(started.elapsed() < Duration::from_secs(30), "stuck");
            if sent == answers.len() {
                client
                    .send(connection, &request(sent as u64, 100_000))
                    .expect("room");
                sent += 1;
            }
            client
                .turn(Duration::from_millis(1), &mut answers)
                .expect("turns");
            answers.retain(|event| matches!(event, Event::Frame { .. }));
            server
                .turn(Duration::from_millis(1), &mut events)
                .expect("turns");
            for event in events.drain(..) {
                if let Event::Frame { connection, .. } = event {
                    server.send(connection, &request(0, 10)).expect("room");
                }
            }
        }
        assert!(server.transport().receive_stats().large_receives > 0);
        for driver in [&mut server, &mut client] {
            let in_flight: Vec<u32> = (0..driver.transport.links.capacity_used())
                .map(|index| {
                    driver
                        .transport
                        .links
                        .get(index)
                        .map_or(0, |link| link.socket.ops_in_flight)
                })
                .collect();
            assert!(in_flight.iter().sum::<u32>() > 0, "receives parked");
            driver.transport.release(&driver.ring.submitter());
            assert!(driver.transport.released, "every operation cancelled");
            // Every operation in flight posts its last completion (some, like
            // a close linked behind a shutdown, only at a later enter).
            let mut finished = vec![0u32; in_flight.len()];
            let tags_start = driver.transport.resources.tags.start;
            let drained = driver.drain_released(Duration::from_secs(5), |cqe| {
                if let Some(offset) = cqe.user_data().checked_sub(tags_start) {
                    let (index, _) = super::super::link_index_op(offset);
                    if index < finished.len() && !io_uring::cqueue::more(cqe.flags()) {
                        finished[index] += 1;
                    }
                }
            });
            assert!(drained, "never drained");
            assert_eq!(finished, in_flight, "each operation ended, once");
        }
    }

    /// Operations queued but never submitted (a close right before the
    /// drop) end at release: the transport drains, and leaks nothing.
    #[test]
    fn release_ends_operations_never_submitted() {
        if !available() {
            return eprintln!("io_uring unavailable here, skipped");
        }
        let mut server = listening_server();
        let (client, connection) = accepted_connection(&mut server);
        // Queued: a shutdown and a close, never submitted.
        server.close(connection);
        server.transport.release(&server.ring.submitter());
        assert!(
            server.drain_released(Duration::from_secs(5), |_| {}),
            "never drained"
        );
        assert_closed(client);
    }

    /// A busy-polling turn finds a frame that arrives while it polls: the
    /// receive's completion waits as deferred task work, which the poll
    /// runs when the kernel flags it (without that it would poll out its
    /// budget, 10 s here, and the frame would come from the wait after).
    #[test]
    fn a_busy_polling_turn_finds_a_frame_arriving_while_it_polls() {
        if !available() {
            return eprintln!("io_uring unavailable here, skipped");
        }
        let mut server = listening_server_with(|config| config.busy_poll_us = 60_000_000);
        let (mut client, _) = accepted_connection(&mut server);
        let mut events = Vec::new();
        write_frames(&mut client, true, 1);
        turn_until_frame(&mut server, &mut events, |server, events| {
            server
                .turn(Duration::from_millis(1), events)
                .expect("turns");
        });
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            write_frames(&mut client, false, 2);
            client
        });
        let before = server.busy_polls_found();
        events.clear();
        turn_until_frame(&mut server, &mut events, |server, events| {
            server.turn(Duration::from_secs(10), events).expect("turns");
        });
        assert!(
            server.busy_polls_found() > before,
            "the frame came from a wait, not from polling"
        );
        drop(writer.join().expect("the writer finishes"));
    }

    /// A turn right after bytes arrived waits coalesced; a quiet turn, and a
    /// turn that sends (an answer), wait for the first completion.
    #[test]
    fn only_turns_after_arrivals_without_sends_wait_coalesced() {
        if !available() {
            return eprintln!("io_uring unavailable here, skipped");
        }
        let mut server = listening_server();
        if !server.coalesces() {
            return eprintln!("no IORING_FEAT_MIN_TIMEOUT here, skipped");
        }
        let (mut client, connection) = accepted_connection(&mut server);
        let mut events = Vec::new();
        let coalesced_turn = |server: &mut UringDriver, events: &mut Vec<Event>| {
            let before = server.coalesced_waits();
            server
                .turn(Duration::from_millis(2), events)
                .expect("turns");
            server.coalesced_waits() > before
        };
        // Until the frame is in: the turn that brings it waited the usual way.
        write_frames(&mut client, true, 1);
        turn_until_frame(&mut server, &mut events, |server, events| {
            assert!(!coalesced_turn(server, events), "a quiet turn coalesced");
        });
        events.clear();
        assert!(
            coalesced_turn(&mut server, &mut events),
            "the turn after it did not"
        );
        assert!(
            !coalesced_turn(&mut server, &mut events),
            "a quiet turn coalesced"
        );
        // A frame again, answered: the turn that sends the answer does not
        // coalesce.
        write_frames(&mut client, false, 2);
        turn_until_frame(&mut server, &mut events, |server, events| {
            coalesced_turn(server, events);
        });
        server.send(connection, &request(3, 100)).expect("room");
        assert!(
            !coalesced_turn(&mut server, &mut events),
            "a sending turn coalesced"
        );
    }

    /// A coalesced wait ends by the turn's own timeout, even one shorter
    /// than the minimum wait (the kernel would sleep the minimum out, as it
    /// arms only the minimum's timer until that fires): the `Transport`
    /// contract waits up to `timeout`.
    #[test]
    fn a_coalesced_wait_ends_by_the_turns_timeout() {
        if !available() {
            return eprintln!("io_uring unavailable here, skipped");
        }
        // Far longer than the turn's timeout below, and than any delay a
        // busy machine adds to it.
        let mut server = listening_server_with(|config| config.coalesce_wait_us = 2_000_000);
        if !server.coalesces() {
            return eprintln!("no IORING_FEAT_MIN_TIMEOUT here, skipped");
        }
        let (mut client, _connection) = accepted_connection(&mut server);
        // The driver's timer, armed by the 1 ms turns above, fires meanwhile
        // and the next turn takes it: no timer of the driver's is armed for
        // the turn under test (it would end the wait by itself).
        std::thread::sleep(Duration::from_millis(20));
        write_frames(&mut client, true, 1);
        let mut events = Vec::new();
        turn_until_frame(&mut server, &mut events, |server, events| {
            // Long turns: a timer armed for them would end none below.
            server.turn(Duration::from_secs(30), events).expect("turns");
        });
        events.clear();
        // Bytes came in the last turn and nothing is sent: this one coalesces.
        let (before, started) = (server.coalesced_waits(), Instant::now());
        server
            .turn(Duration::from_millis(5), &mut events)
            .expect("turns");
        let took = started.elapsed();
        assert!(
            server.coalesced_waits() > before,
            "the turn did not coalesce"
        );
        assert!(
            took < Duration::from_secs(1),
            "a turn with a 5 ms timeout waited {took:?}"
        );
    }

    /// A turn whose submission queue filled (its `prepare` ran twice)
    /// still knows that bytes arrived in the turn before.
    #[test]
    fn a_prepare_cut_short_by_a_full_queue_keeps_the_arrival() {
        if !available() {
            return eprintln!("io_uring unavailable here, skipped");
        }
        let mut server = listening_server();
        let (mut client, connection) = accepted_connection(&mut server);
        write_frames(&mut client, true, 1);
        let mut events = Vec::new();
        turn_until_frame(&mut server, &mut events, |server, events| {
            server
                .turn(Duration::from_millis(1), events)
                .expect("turns");
        });
        // A shutdown and its close to push, into a queue with one free slot.
        server.transport.close(connection);
        let now = Instant::now();
        let (submitter, mut sq, _) = server.ring.split();
        fill_all_but_one(&mut sq);
        assert!(
            !server.transport.prepare(now, &submitter, &mut sq),
            "no room for both"
        );
        sq.sync();
        submitter.submit().expect("submits");
        sq.sync();
        assert!(
            server.transport.prepare(now, &submitter, &mut sq),
            "both fit now"
        );
        assert!(
            server.transport.take_outlook().coalescable,
            "the arrival was forgotten by the first prepare"
        );
        drop(sq);
        server.transport.release(&server.ring.submitter());
        assert!(
            server.drain_released(Duration::from_secs(5), |_| {}),
            "never drained"
        );
    }

    /// A driver listening on loopback with room for a few connections.
    fn listening_server() -> UringDriver {
        listening_server_with(|_| {})
    }

    /// As [`listening_server`], with `adjust` applied to its configuration.
    fn listening_server_with(adjust: impl FnOnce(&mut Config)) -> UringDriver {
        let mut config = Config::new(NodeId(2));
        config.listen = Some("127.0.0.1:0".parse().expect("an address"));
        config.connections_max = 8;
        adjust(&mut config);
        UringDriver::open(config).expect("opens")
    }

    /// Writes a request frame numbered `seq`, after a hello when `hello`,
    /// as the client of an accepted connection.
    fn write_frames(client: &mut std::net::TcpStream, hello: bool, seq: u64) {
        let mut bytes = rkyv::util::AlignedVec::<{ crate::bytes::ALIGNMENT }>::new();
        if hello {
            crate::frame::encode_into(&mut bytes, &Config::new(NodeId(1)).hello(), 1 << 20)
                .expect("encodes");
        }
        crate::frame::encode_into(&mut bytes, &request(seq, 100), 1 << 20).expect("encodes");
        std::io::Write::write_all(client, &bytes).expect("writes");
    }

    /// Runs `turn` until a frame is among `events` (for at most 30 s).
    fn turn_until_frame(
        server: &mut UringDriver,
        events: &mut Vec<Event>,
        mut turn: impl FnMut(&mut UringDriver, &mut Vec<Event>),
    ) {
        let started = Instant::now();
        while !events
            .iter()
            .any(|event| matches!(event, Event::Frame { .. }))
        {
            assert!(started.elapsed() < Duration::from_secs(30), "no frame");
            turn(server, events);
        }
    }

    /// Fills the submission queue with no-ops up to one free entry.
    fn fill_all_but_one(sq: &mut io_uring::SubmissionQueue<'_>) {
        sq.sync();
        let nop = opcode::Nop::new().build().user_data(u64::MAX - 1);
        while sq.capacity() - sq.len() > 1 {
            // SAFETY: a no-op refers to no memory.
            unsafe { sq.push(&nop) }.expect("room");
        }
    }

    /// Connects a client to `server` and turns until the server has
    /// accepted it and armed its receive.
    fn accepted_connection(server: &mut UringDriver) -> (std::net::TcpStream, ConnectionId) {
        let address = server.transport().local_addr().expect("listening");
        let client = std::net::TcpStream::connect(address).expect("connects");
        let started = Instant::now();
        let mut events = Vec::new();
        let connection = loop {
            assert!(started.elapsed() < Duration::from_secs(30), "no accept");
            server
                .turn(Duration::from_millis(1), &mut events)
                .expect("turns");
            if let Some(Event::Accepted { connection }) = events.pop() {
                break connection;
            }
        };
        server.turn(Duration::ZERO, &mut events).expect("turns"); // receive armed
        (client, connection)
    }

    /// The peer of a connection the server dropped sees it end.
    fn assert_closed(mut client: std::net::TcpStream) {
        client
            .set_read_timeout(Some(Duration::from_secs(2)))
            .expect("a timeout");
        match std::io::Read::read(&mut client, &mut [0u8; 1]) {
            Ok(0) => {}
            Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
            other => panic!("the server side was left open: {other:?}"),
        }
    }

    #[test]
    fn release_closes_connections_accepted_as_it_goes() {
        if !available() {
            return eprintln!("io_uring unavailable here, skipped");
        }
        let mut server = listening_server();
        let address = server.transport().local_addr().expect("listening");
        let mut events = Vec::new();
        server.turn(Duration::ZERO, &mut events).expect("turns"); // accept armed
        let clients: Vec<_> = (0..4)
            .map(|_| std::net::TcpStream::connect(address).expect("connects"))
            .collect();
        std::thread::sleep(Duration::from_millis(50));
        // The owner entered the ring and has not handed the completions
        // (accepts that say more may follow) to the transport yet.
        let zero = types::Timespec::new();
        let _ = server
            .ring
            .submitter()
            .submit_with_args(1, &types::SubmitArgs::new().timespec(&zero));
        server.transport.release(&server.ring.submitter());
        assert!(
            server.drain_released(Duration::from_secs(5), |_| {}),
            "never drained"
        );
        for client in clients {
            assert_closed(client);
        }
    }

    /// A shutdown never goes into the last free submission slot alone
    /// (its hard link would catch whatever is pushed next).
    #[test]
    fn a_shutdown_goes_in_only_with_its_close() {
        if !available() {
            return eprintln!("io_uring unavailable here, skipped");
        }
        let mut server = listening_server();
        let (_client, connection) = accepted_connection(&mut server);
        server.transport.close(connection);
        let now = Instant::now();
        let (submitter, mut sq, _) = server.ring.split();
        fill_all_but_one(&mut sq);
        assert!(
            !server.transport.prepare(now, &submitter, &mut sq),
            "no room for both"
        );
        assert_eq!(sq.capacity() - sq.len(), 1, "nothing pushed alone");
        assert_eq!(
            server.transport.pending.len(),
            2,
            "shutdown and close wait together"
        );
        sq.sync();
        submitter.submit().expect("submits");
        sq.sync();
        assert!(
            server.transport.prepare(now, &submitter, &mut sq),
            "both fit now"
        );
        assert_eq!(sq.len(), 2, "shutdown and close pushed together");
        drop(sq);
        server.transport.release(&server.ring.submitter());
        assert!(
            server.drain_released(Duration::from_secs(5), |_| {}),
            "never drained"
        );
    }
}

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

/// A ring of its own running one transport.
pub struct UringDriver {
    transport: UringTransport,
    ring: IoUring,
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
        let transport = UringTransport::new(config, resources, &ring.submitter())?;
        Ok(UringDriver { transport, ring })
    }

    /// The transport, for what the [`Transport`] trait does not offer.
    #[must_use]
    pub fn transport(&self) -> &UringTransport {
        &self.transport
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

impl Drop for UringDriver {
    fn drop(&mut self) {
        self.transport.release(&self.ring.submitter());
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
        sq.sync();
        let timespec = types::Timespec::from(wait);
        let args = types::SubmitArgs::new().timespec(&timespec);
        match submitter.submit_with_args(1, &args) {
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) => {}
            Err(error) => {
                return Err(TransportError::Uring {
                    context: "submit_and_wait",
                    source: error,
                })
            }
        }
        cq.sync();
        for cqe in &mut cq {
            if self.transport.owns(cqe.user_data()) {
                self.transport.complete(&cqe, &submitter);
            }
        }
        self.transport.drain_events(events);
        Ok(())
    }
}

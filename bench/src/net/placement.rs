//! Where a benchmark run's two threads run: [`Pin`], and pinning the
//! calling thread for the length of a run.

use super::Mode;

/// Where a run's two threads (server and client) may run.
///
/// On one machine a ping-pong over one connection is serial: the fastest
/// placement is both threads on one CPU, which is where the kernel's
/// synchronous wake-ups put blocking sockets and epoll waiters anyway,
/// while io_uring's task-work wake-ups leave the woken thread on its own
/// CPU. On the 2-vCPU VM this was measured on a cross-CPU wake-up costs
/// about 15 µs of CPU, so a one-connection ping-pong split over two CPUs
/// runs at 16-18k round trips/s on every back end, blocking sockets
/// included (net/README.md), and an unpinned run measures where the
/// scheduler happened to put the threads. With many requests in flight
/// each side has work while the other runs, and two CPUs win.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Pin {
    /// Ping-pong with fewer than [`SHARED_CONNECTIONS_BELOW`] connections
    /// on one CPU (`Shared`), everything else on two (`Split`): the
    /// placement each is fastest in here, the same for every back end.
    #[default]
    Auto,
    /// Both on the process's first CPU.
    Shared,
    /// Each on a CPU of its own (the first two), as shards are pinned.
    Split,
    /// Wherever the scheduler puts them.
    Free,
}

/// The calling thread's CPU affinity, restored when dropped.
pub(super) struct Pinned {
    original: Option<libc::cpu_set_t>,
}

impl Pinned {
    /// Pins the calling thread to `cpu` (`None`: leaves it alone). Best
    /// effort: a failure leaves the thread where it may run.
    pub(super) fn to(cpu: Option<usize>) -> Pinned {
        let Some(cpu) = cpu else {
            return Pinned { original: None };
        };
        let original = affinity();
        // SAFETY: cpu_set_t is plain old data; all-zero is an empty set.
        let mut only: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: callers pass a CPU below CPU_SETSIZE (from `allowed_cpus`).
        unsafe { libc::CPU_SET(cpu, &mut only) };
        // SAFETY: the set lives across the call and its size is given.
        unsafe { libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &raw const only) };
        Pinned {
            original: Some(original),
        }
    }
}

impl Drop for Pinned {
    fn drop(&mut self) {
        if let Some(original) = &self.original {
            // SAFETY: the set lives across the call and its size is given.
            unsafe {
                libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), original);
            }
        }
    }
}

/// The calling thread's CPU affinity (empty if it cannot be read).
fn affinity() -> libc::cpu_set_t {
    // SAFETY: cpu_set_t is plain old data; all-zero is an empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the set lives across the call and its size is given.
    let got = unsafe { libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &raw mut set) };
    if got != 0 {
        // SAFETY: as above.
        set = unsafe { std::mem::zeroed() };
    }
    set
}

/// The CPUs the calling thread may run on.
fn allowed_cpus() -> Vec<usize> {
    let set = affinity();
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: the index is below CPU_SETSIZE.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// [`Pin::Auto`] runs ping-pong with fewer connections than this on one
/// CPU. A side that runs out of work sleeps and costs a cross-CPU wake-up
/// (about 15 µs here) against about 8 µs of CPU per message and side, so
/// two CPUs pay off once each side finds a few messages per wake-up
/// (measured: 2 connections, 55k round trips/s on one CPU against 28k on
/// two; 64 connections, 84k against 165k).
pub const SHARED_CONNECTIONS_BELOW: usize = 4;

impl Pin {
    /// The CPUs of a run's server and client, chosen among those the
    /// calling thread may use (before either is pinned: a thread inherits
    /// its creator's affinity). Threads that busy-poll get a CPU each
    /// under `Auto`: sharing one, each would spin away the other's time.
    pub(super) fn cpus(
        self,
        mode: Mode,
        connections: usize,
        busy_poll: bool,
    ) -> (Option<usize>, Option<usize>) {
        let allowed = allowed_cpus();
        let rank = |rank: usize| allowed.get(rank % allowed.len().max(1)).copied();
        let serial = mode == Mode::PingPong && connections < SHARED_CONNECTIONS_BELOW && !busy_poll;
        match self {
            Pin::Free => (None, None),
            Pin::Auto if serial => (rank(0), rank(0)),
            Pin::Shared => (rank(0), rank(0)),
            Pin::Auto | Pin::Split => (rank(0), rank(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Auto` puts a serial ping-pong on one CPU, unless its threads
    /// busy-poll: then each gets a CPU of its own (where there are two).
    #[test]
    fn auto_splits_busy_polling_threads() {
        let (server, client) = Pin::Auto.cpus(Mode::PingPong, 1, false);
        assert_eq!(server, client, "a serial ping-pong shares a CPU");
        let (server, client) = Pin::Auto.cpus(Mode::PingPong, 1, true);
        if allowed_cpus().len() >= 2 {
            assert_ne!(server, client, "busy-polling threads share a CPU");
        }
        assert_eq!(
            Pin::Shared.cpus(Mode::PingPong, 1, true),
            (server, server),
            "an explicit placement is kept"
        );
    }
}

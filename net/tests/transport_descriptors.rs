//! A listener when the process runs out of file descriptors, on both back
//! ends (one after the other, in one test). Alone in its test binary: it
//! lowers the process's descriptor limit for a moment.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{accepted, address};
use synod_net::transport::{self, uring, BackendChoice};

/// Connections left in the backlog while no descriptor was free are
/// accepted once descriptors are free again, though no further connect
/// comes (the portable listener's edge-triggered readiness was spent on
/// accepts that failed with `EMFILE`); and while none is free, the turns
/// wait instead of retrying the accept at once (io_uring's multishot accept
/// ends with the error, and armed again at once it fails at once).
#[test]
fn connects_refused_for_want_of_descriptors_are_accepted_once_there_are_some() {
    starved_backlog(BackendChoice::Portable);
    if uring::available() {
        starved_backlog(BackendChoice::IoUring);
    }
}

fn starved_backlog(backend: BackendChoice) {
    let mut server = transport::open(common::config(backend, 1)).expect("opens");
    let addr = address(server.as_ref());
    let clients: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(addr).expect("connects"))
        .collect();
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a live struct the call fills.
    let got = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) };
    assert_eq!(got, 0);
    // SAFETY: F_DUPFD on standard input takes no pointers; the copy is closed.
    let lowest_free = unsafe { libc::fcntl(0, libc::F_DUPFD, 0) };
    assert!(lowest_free >= 0, "a descriptor is free");
    // SAFETY: the descriptor was opened just above and nothing else owns it.
    unsafe { libc::close(lowest_free) };
    let starved = libc::rlimit {
        rlim_cur: lowest_free as libc::rlim_t,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: the struct is live; lowering the soft limit is always allowed.
    let lowered = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const starved) };
    assert_eq!(lowered, 0);
    let mut seen = Vec::new();
    let (starved_at, mut turns, mut longest) = (Instant::now(), 0, Duration::ZERO);
    while starved_at.elapsed() < Duration::from_millis(300) {
        let turn_started = Instant::now();
        server
            .turn(Duration::from_secs(2), &mut seen)
            .expect("turns");
        longest = longest.max(turn_started.elapsed());
        turns += 1;
    }
    // SAFETY: as above; the soft limit goes back to what it was.
    let restored = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) };
    assert_eq!(restored, 0);
    assert_eq!(
        accepted(&seen),
        0,
        "nothing could be accepted without descriptors"
    );
    // A retry every 50 ms makes about 6 turns in 300 ms; a spin, thousands.
    assert!(
        turns <= 60,
        "{backend:?}: {turns} turns in 300 ms without descriptors: the accept spins"
    );
    // The turns wait for the accept's retry (every 50 ms), not for their
    // whole timeout: nothing else would wake them.
    assert!(
        longest < Duration::from_secs(1),
        "{backend:?}: a turn slept {longest:?} past the accept's retry"
    );
    let started = Instant::now();
    while accepted(&seen) < clients.len() {
        assert!(
            started.elapsed() < common::DEADLINE,
            "{backend:?}: the backlog was never accepted: {seen:?}"
        );
        server
            .turn(Duration::from_millis(10), &mut seen)
            .expect("turns");
    }
}

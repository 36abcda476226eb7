//! A live listener shrugs off garbage: the bad connection is closed with a
//! logged reason, and other connections keep being served. Also: frames
//! trickled a byte at a time arrive whole, and the automatic back-end choice
//! takes io_uring wherever it works.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{accepted, address, endpoint, request_seq, DEADLINE};
use synod_net::frame::{encode, encode_into};
use synod_net::samples::request;
use synod_net::transport::{
    self, uring, Backend, BackendChoice, CloseReason, Config, Event, Transport,
};
use synod_net::wire::{Hello, NodeId};

/// Turns `server` until `done` says so, with the deadline.
fn serve_until(
    server: &mut Box<dyn Transport>,
    seen: &mut Vec<Event>,
    done: impl Fn(&[Event]) -> bool,
) {
    let started = Instant::now();
    while !done(seen) {
        assert!(
            started.elapsed() < DEADLINE,
            "timed out; events so far: {seen:?}"
        );
        server.turn(Duration::from_millis(1), seen).expect("turns");
    }
}

/// Turns `server` until the peer's end of `socket` sees the connection close.
fn wait_until_closed(
    server: &mut Box<dyn Transport>,
    seen: &mut Vec<Event>,
    socket: &mut TcpStream,
) {
    socket.set_nonblocking(true).expect("non-blocking");
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < DEADLINE,
            "the bad connection was not closed"
        );
        server.turn(Duration::from_millis(1), seen).expect("turns");
        let mut byte = [0u8; 1];
        match socket.read(&mut byte) {
            Ok(0) => return,
            Ok(_) => panic!("nothing is sent back to garbage"),
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => return, // reset: closed as well
        }
    }
}

fn closed_for_bad_frame(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|event| {
            matches!(
                event,
                Event::Closed {
                    reason: CloseReason::Frame(_),
                    ..
                }
            )
        })
        .count()
}

fn garbage_closes_only_its_connection(backend: BackendChoice) {
    let mut server = endpoint(backend, 1);
    let addr = address(server.as_ref());
    let mut good = TcpStream::connect(addr).expect("connects");
    good.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout set");
    let hello = Hello {
        cluster_id: 99,
        node: NodeId(5),
        shard: 0,
    };
    good.write_all(&encode(&hello, 1 << 20).expect("encodes"))
        .expect("writes");
    let attacks: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
        vec![0xFF; 4096],
        {
            let mut lying = encode(&request(1, 10), 1 << 20).expect("encodes").to_vec();
            lying[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
            lying
        },
        {
            let mut flipped = encode(&request(1, 100), 1 << 20).expect("encodes").to_vec();
            flipped[40] ^= 0x10;
            flipped
        },
    ];
    let mut seen = Vec::new();
    for (round, attack) in attacks.iter().enumerate() {
        let mut bad = TcpStream::connect(addr).expect("connects");
        bad.write_all(attack).expect("writes");
        serve_until(&mut server, &mut seen, |events| {
            closed_for_bad_frame(events) > round
        });
        wait_until_closed(&mut server, &mut seen, &mut bad);
        good.write_all(&encode(&request(round as u64, 8), 1 << 20).expect("encodes"))
            .expect("writes");
        serve_until(&mut server, &mut seen, |events| {
            events
                .iter()
                .filter_map(request_seq)
                .any(|(_, _, seq, _)| seq == round as u64)
        });
    }
    let from_good: Vec<_> = seen
        .iter()
        .filter_map(request_seq)
        .map(|(_, peer, seq, _)| (peer, seq))
        .collect();
    assert_eq!(
        from_good,
        (0..4).map(|seq| (Some(NodeId(5)), seq)).collect::<Vec<_>>()
    );
}

fn trickled_frames_arrive_whole(backend: BackendChoice) {
    let mut server = endpoint(backend, 1);
    let mut client = TcpStream::connect(address(server.as_ref())).expect("connects");
    client.set_nodelay(true).expect("nodelay");
    let mut stream = rkyv::util::AlignedVec::<16>::new();
    for seq in 0..3 {
        encode_into(&mut stream, &request(seq, 300), 1 << 20).expect("encodes");
    }
    let mut seen = Vec::new();
    for (at, byte) in stream.iter().enumerate() {
        client.write_all(&[*byte]).expect("writes");
        if at % 7 == 0 {
            server.turn(Duration::ZERO, &mut seen).expect("turns");
        }
    }
    serve_until(&mut server, &mut seen, |events| {
        events.iter().filter_map(request_seq).count() == 3
    });
    let seqs: Vec<u64> = seen
        .iter()
        .filter_map(request_seq)
        .map(|(_, _, seq, _)| seq)
        .collect();
    assert_eq!(seqs, vec![0, 1, 2]);
}

macro_rules! both_backends {
    ($($name:ident => $body:expr;)*) => {
        mod portable {
            use super::*;
            $(#[test] fn $name() { ($body)(BackendChoice::Portable) })*
        }
        mod io_uring {
            use super::*;
            $(#[test] fn $name() { ($body)(BackendChoice::IoUring) })*
        }
    };
}

both_backends! {
    garbage_to_a_live_listener_closes_only_that_connection => garbage_closes_only_its_connection;
    frames_trickled_byte_by_byte_arrive_whole => trickled_frames_arrive_whole;
    a_burst_of_connects_is_accepted_whole => burst_of_connects_accepted_whole;
    a_flooding_peer_starves_no_one => flooding_peer_starves_no_one;
}

#[test]
fn the_automatic_choice_runs_io_uring_wherever_it_is_available() {
    let mut config = Config::new(NodeId(1));
    config.listen = Some("127.0.0.1:0".parse().expect("an address"));
    let transport = transport::open(config).expect("opens");
    if uring::available() {
        assert_eq!(
            transport.backend(),
            Backend::IoUring,
            "portable ran although io_uring is available and was not forced"
        );
    } else {
        assert_eq!(transport.backend(), Backend::Portable);
    }
}

/// A frame limit too small for the hello a transport sends on its own is a
/// configuration error at open, not a panic at the first connect.
#[test]
fn a_frame_limit_below_the_hello_is_refused_at_open() {
    for backend in [BackendChoice::Portable, BackendChoice::Auto] {
        let mut config = common::config(backend, 1);
        config.body_bytes_max = 8;
        let refused = transport::open(config).map(|_| ()).expect_err("refused");
        assert!(
            refused.to_string().contains("body_bytes_max"),
            "refused for another reason: {refused}"
        );
    }
}

/// A burst of connects larger than one turn accepts: every one of them is
/// accepted in the turns that follow, though no further connect arrives.
fn burst_of_connects_accepted_whole(backend: BackendChoice) {
    let mut config = common::config(backend, 1);
    config.connections_max = 256;
    let mut server = transport::open(config).expect("opens");
    let addr = address(server.as_ref());
    let mut seen = Vec::new();
    server.turn(Duration::ZERO, &mut seen).expect("turns"); // accept armed
    let clients: Vec<TcpStream> = (0..100)
        .map(|_| TcpStream::connect(addr).expect("connects"))
        .collect();
    serve_until(&mut server, &mut seen, |events| {
        accepted(events) == clients.len()
    });
}

/// A thread writing small request frames into a socket without pause,
/// 64 KiB at a time, until stopped, until its writes fail or after
/// `bytes_max` bytes.
struct Flooder {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
    /// The length of each frame it writes.
    frame_bytes: usize,
}

impl Flooder {
    fn start(mut socket: TcpStream, bytes_max: usize) -> Flooder {
        let mut chunk = rkyv::util::AlignedVec::<16>::new();
        while chunk.len() < 64 << 10 {
            encode_into(&mut chunk, &request(7, 8), 1 << 20).expect("encodes");
        }
        let frame_bytes = encode(&request(7, 8), 1 << 20).expect("encodes").len();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) && sent < bytes_max {
                    if socket.write_all(&chunk).is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
            })
        };
        Flooder {
            stop,
            thread,
            frame_bytes,
        }
    }

    /// Stops the flood and waits for the thread; dropping `server` makes
    /// a write that is blocked fail.
    fn stop(self, server: Box<dyn Transport>) {
        self.stop.store(true, Ordering::Relaxed);
        drop(server);
        self.thread.join().expect("the flooder ends");
    }
}

/// A peer that sends without pause cannot hold a turn: each turn takes a
/// bounded share of its bytes, and another connection's frame arrives
/// while the flood goes on.
fn flooding_peer_starves_no_one(backend: BackendChoice) {
    let mut server = endpoint(backend, 1);
    let addr = address(server.as_ref());
    let flood = TcpStream::connect(addr).expect("connects");
    let mut good = TcpStream::connect(addr).expect("connects");
    let mut seen = Vec::new();
    serve_until(&mut server, &mut seen, |events| accepted(events) == 2);
    let flooder = Flooder::start(flood, 64 << 20);
    let frame_bytes = flooder.frame_bytes;
    // The flood fills the socket before the good frame goes.
    std::thread::sleep(Duration::from_millis(50));
    good.write_all(&encode(&request(1_000_000, 8), 1 << 20).expect("encodes"))
        .expect("writes");
    let started = Instant::now();
    let mut arrived = false;
    while !arrived {
        assert!(started.elapsed() < DEADLINE, "the good frame never arrived");
        let mut events = Vec::new();
        server
            .turn(Duration::from_millis(1), &mut events)
            .expect("turns");
        let frames = events.iter().filter_map(request_seq).count();
        assert!(
            frames * frame_bytes <= 8 << 20,
            "one turn took {frames} frames ({} MiB) from a flooding peer",
            (frames * frame_bytes) >> 20
        );
        arrived = events
            .iter()
            .filter_map(request_seq)
            .any(|(_, _, seq, _)| seq == 1_000_000);
    }
    flooder.stop(server);
}

/// The portable back end reads a connection at most 16 times in one turn,
/// counting both the reads that go on from the last turn and those its new
/// readiness asks for: with 4 KiB receive buffers no turn takes more than
/// 64 KiB (and a frame's rest) from a peer that floods without pause.
#[test]
fn a_flooding_peer_is_read_at_most_16_times_a_turn() {
    const RECEIVE_BUFFER_BYTES: usize = 4096;
    let mut config = common::config(BackendChoice::Portable, 1);
    config.receive_buffer_bytes = RECEIVE_BUFFER_BYTES;
    let mut server = transport::open(config).expect("opens");
    let addr = address(server.as_ref());
    let flood = TcpStream::connect(addr).expect("connects");
    let mut seen = Vec::new();
    serve_until(&mut server, &mut seen, |events| accepted(events) > 0);
    let flooder = Flooder::start(flood, usize::MAX);
    let frame_bytes = flooder.frame_bytes;
    std::thread::sleep(Duration::from_millis(50));
    let bytes_max = 16 * RECEIVE_BUFFER_BYTES + frame_bytes;
    let started = Instant::now();
    let mut received = 0;
    let mut most = 0;
    while received < 32 << 20 && started.elapsed() < Duration::from_secs(5) {
        let mut events = Vec::new();
        server
            .turn(Duration::from_millis(1), &mut events)
            .expect("turns");
        let bytes = events.iter().filter_map(request_seq).count() * frame_bytes;
        received += bytes;
        most = most.max(bytes);
    }
    flooder.stop(server);
    assert!(received > 0, "the flood never arrived");
    assert!(
        most <= bytes_max,
        "one turn took {most} bytes from one connection (16 reads of {RECEIVE_BUFFER_BYTES} bytes are {bytes_max} at most)"
    );
}

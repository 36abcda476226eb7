//! Large frames in request and response traffic (as a follower receives
//! batches and answers each one). The io_uring back end receives such
//! frames one at a time into buffers of its own, in place, or straight into
//! the partial body when a frame is larger than that buffer. It receives
//! small frames, and streams of large ones, multishot, and it switches as
//! the sizes change. On both back ends every frame arrives intact and in
//! order, including while the consumer keeps some of them.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{address, request_seq, DEADLINE};
use synod_net::frame::{encode, HEADER_BYTES};
use synod_net::samples::request;
use synod_net::transport::uring::UringDriver;
use synod_net::transport::{BackendChoice, CloseReason, Event, Transport};
use synod_net::wire::{Hello, NodeId};

/// Payload sizes in turn: large (in place), small (multishot again), larger
/// than the large receive buffer (straight into the partial body), and
/// sizes around that buffer's size.
const SIZES: [usize; 9] = [
    65_536,
    100,
    200 << 10,
    (128 << 10) - 200,
    20 << 10,
    8,
    900 << 10,
    (128 << 10) + 100,
    300,
];

/// Turns `transport` until a request arrives; returns its sequence number
/// and payload length, and keeps the frame in `kept` when asked.
fn next_request(
    transport: &mut dyn Transport,
    keep: bool,
    kept: &mut Vec<Event>,
) -> Option<(synod_net::transport::ConnectionId, u64, usize)> {
    let mut events = Vec::new();
    transport
        .turn(Duration::from_millis(1), &mut events)
        .expect("turns");
    let mut found = None;
    for event in events {
        if let Some((connection, _, seq, length)) = request_seq(&event) {
            assert!(found.is_none(), "one request in flight at a time");
            found = Some((connection, seq, length));
            if keep {
                kept.push(event);
            }
        }
    }
    found
}

/// Ping-pong of `rounds` requests cycling through [`SIZES`], each answered
/// by an echo of the same size; the server keeps every third request.
fn ping_pong(client: &mut dyn Transport, server: &mut dyn Transport, rounds: u64) {
    let connection = client.connect(NodeId(2), address(server)).expect("room");
    let started = Instant::now();
    let mut kept = Vec::new();
    for seq in 0..rounds {
        let size = SIZES[seq as usize % SIZES.len()];
        client
            .send(connection, &request(seq, size))
            .expect("room in the queue");
        let (from, got, length) = loop {
            assert!(started.elapsed() < DEADLINE, "request {seq} never arrived");
            client.turn(Duration::ZERO, &mut Vec::new()).expect("turns");
            if let Some(found) = next_request(server, seq % 3 == 0, &mut kept) {
                break found;
            }
        };
        assert_eq!((got, length), (seq, size), "requests in order, whole");
        server.send(from, &request(seq, size)).expect("room");
        let (got, length) = loop {
            assert!(started.elapsed() < DEADLINE, "answer {seq} never arrived");
            server.turn(Duration::ZERO, &mut Vec::new()).expect("turns");
            if let Some((_, got, length)) = next_request(client, false, &mut Vec::new()) {
                break (got, length);
            }
        };
        assert_eq!((got, length), (seq, size), "answers in order, whole");
    }
    let kept_seqs: Vec<u64> = kept
        .iter()
        .filter_map(request_seq)
        .map(|(_, _, seq, _)| seq)
        .collect();
    assert_eq!(kept_seqs, (0..rounds).step_by(3).collect::<Vec<_>>());
}

#[test]
fn portable_large_frames_in_request_response_traffic() {
    let mut client =
        synod_net::transport::open(common::config(BackendChoice::Portable, 1)).expect("opens");
    let mut server =
        synod_net::transport::open(common::config(BackendChoice::Portable, 2)).expect("opens");
    ping_pong(client.as_mut(), server.as_mut(), 90);
}

#[test]
fn io_uring_receives_large_answered_frames_one_shot_and_small_ones_multishot() {
    let mut client = UringDriver::open(common::config(BackendChoice::IoUring, 1)).expect("opens");
    let mut server = UringDriver::open(common::config(BackendChoice::IoUring, 2)).expect("opens");
    ping_pong(&mut client, &mut server, 90);
    for (side, driver) in [("server", &server), ("client", &client)] {
        let stats = driver.transport().receive_stats();
        assert!(stats.multishot_receives > 0, "{side}: {stats:?}");
        assert!(stats.multishot_cancels > 0, "{side}: {stats:?}");
        assert!(stats.large_receives > 0, "{side}: {stats:?}");
    }
}

/// Reads one frame off a blocking socket; returns its bytes.
fn read_frame(socket: &mut TcpStream) -> Vec<u8> {
    let mut frame = vec![0u8; HEADER_BYTES];
    socket.read_exact(&mut frame).expect("a header");
    let body = u32::from_le_bytes(frame[8..12].try_into().expect("four bytes")) as usize;
    frame.resize(HEADER_BYTES + body.next_multiple_of(16), 0);
    socket
        .read_exact(&mut frame[HEADER_BYTES..])
        .expect("a body");
    frame
}

/// Writes `bytes` in pieces cut at `cuts`, turning the server between them,
/// so that receives end inside the frame (in its header, too).
fn write_in_pieces(
    socket: &mut TcpStream,
    bytes: &[u8],
    cuts: &[usize],
    server: &mut UringDriver,
    events: &mut Vec<Event>,
) {
    let mut at = 0;
    for &cut in cuts.iter().chain([&bytes.len()]) {
        let cut = cut.min(bytes.len());
        socket.write_all(&bytes[at..cut]).expect("writes");
        at = cut;
        for _ in 0..3 {
            server
                .turn(Duration::from_millis(1), events)
                .expect("turns");
        }
    }
}

/// Answered large frames that arrive in pieces: a frame whose start came
/// in one receive is completed in place by the next, straight after it
/// (the rest of a longer one goes straight into its partial body); and a
/// damaged one closes its connection with a frame error.
#[test]
fn io_uring_completes_large_frames_arriving_in_pieces_in_place() {
    let mut server = UringDriver::open(common::config(BackendChoice::IoUring, 2)).expect("opens");
    let mut socket = TcpStream::connect(address(&server)).expect("connects");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout set");
    let hello = Hello {
        cluster_id: 99,
        node: NodeId(5),
        shard: 0,
    };
    socket
        .write_all(&encode(&hello, 1 << 20).expect("encodes"))
        .expect("writes");
    let mut events = Vec::new();
    for seq in 0..14u64 {
        // The last two are larger than the large receive buffer: their
        // rest goes straight into the partial body.
        let size = if seq < 12 {
            40_000 + seq as usize * 5_000
        } else {
            200_000
        };
        let frame = encode(&request(seq, size), 1 << 20).expect("encodes");
        let cuts = [7, 20_000, 30_000 + seq as usize * 1_000];
        write_in_pieces(&mut socket, &frame, &cuts, &mut server, &mut events);
        let started = Instant::now();
        let connection = loop {
            assert!(started.elapsed() < DEADLINE, "request {seq} never arrived");
            let found = events.drain(..).find_map(|event| {
                request_seq(&event).map(|(connection, _, got, length)| {
                    assert_eq!((got, length), (seq, size), "in order, whole");
                    connection
                })
            });
            if let Some(connection) = found {
                break connection;
            }
            server
                .turn(Duration::from_millis(1), &mut events)
                .expect("turns");
        };
        server.send(connection, &request(seq, 100)).expect("room");
        while server.transport().sends_in_flight() > 0 || server.queued_bytes(connection) > 0 {
            server
                .turn(Duration::from_millis(1), &mut events)
                .expect("turns");
        }
        let answer = read_frame(&mut socket);
        assert_eq!(
            answer.len(),
            encode(&request(seq, 100), 1 << 20).expect("encodes").len()
        );
    }
    let stats = server.transport().receive_stats();
    assert!(stats.large_receives > 0, "{stats:?}");
    assert!(stats.kept_frame_receives > 0, "{stats:?}");
    assert!(stats.direct_receives > 0, "{stats:?}");
    let mut damaged = encode(&request(99, 60_000), 1 << 20)
        .expect("encodes")
        .to_vec();
    damaged[30_000] ^= 0x40;
    write_in_pieces(&mut socket, &damaged, &[25_000], &mut server, &mut events);
    let started = Instant::now();
    while !events.iter().any(|event| {
        matches!(
            event,
            Event::Closed {
                reason: CloseReason::Frame(_),
                ..
            }
        )
    }) {
        assert!(started.elapsed() < DEADLINE, "the damaged frame was taken");
        assert!(
            events.iter().all(|event| request_seq(event).is_none()),
            "no damaged frame is delivered"
        );
        server
            .turn(Duration::from_millis(1), &mut events)
            .expect("turns");
    }
}

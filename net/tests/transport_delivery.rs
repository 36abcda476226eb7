//! Both transports: ordered delivery under load (two and three endpoints),
//! peer restart and reconnect, partial reads and writes, and the automatic
//! choice of back end.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{address, endpoint, pump, request_seq, send_with_backpressure, DEADLINE};
use synod_net::frame::{encode, HEADER_BYTES};
use synod_net::samples::request;
use synod_net::transport::{BackendChoice, Event, Transport};
use synod_net::wire::{Hello, NodeId};

fn ordered_delivery_two_endpoints(backend: BackendChoice, count: u64, payload_bytes: usize) {
    let mut sender = endpoint(backend, 1);
    let mut receiver = endpoint(backend, 2);
    let connection = sender
        .connect(NodeId(2), address(receiver.as_ref()))
        .expect("room");
    let started = Instant::now();
    let mut sink = Vec::new();
    let mut received = Vec::new();
    let mut next = 0u64;
    while received.len() < count as usize {
        assert!(
            started.elapsed() < DEADLINE,
            "only {} of {count} arrived",
            received.len()
        );
        for _ in 0..64 {
            if next < count && sender.queued_bytes(connection) < (1 << 20) {
                sender
                    .send(connection, &request(next, payload_bytes))
                    .expect("room in the queue");
                next += 1;
            }
        }
        sender.turn(Duration::ZERO, &mut sink).expect("turns");
        sink.clear();
        let mut events = Vec::new();
        receiver
            .turn(Duration::from_millis(1), &mut events)
            .expect("turns");
        for event in &events {
            if let Some((_, peer, seq, length)) = request_seq(event) {
                assert_eq!(peer, Some(NodeId(1)), "the hello came first");
                assert_eq!(length, payload_bytes);
                received.push(seq);
            }
        }
    }
    assert_eq!(received, (0..count).collect::<Vec<_>>());
}

fn three_endpoints_all_to_all(backend: BackendChoice) {
    let count = 3_000u64;
    let mut nodes: Vec<Box<dyn Transport>> = (1..=3).map(|node| endpoint(backend, node)).collect();
    let addresses: Vec<_> = nodes.iter().map(|node| address(node.as_ref())).collect();
    let mut outbound = Vec::new();
    for (from, node) in nodes.iter_mut().enumerate() {
        let mut links = Vec::new();
        for (to, addr) in addresses.iter().enumerate() {
            if to != from {
                links.push(node.connect(NodeId(to as u8 + 1), *addr).expect("room"));
            }
        }
        outbound.push(links);
    }
    let started = Instant::now();
    let mut seen: HashMap<(usize, NodeId), Vec<u64>> = HashMap::new();
    let mut next = 0u64;
    let mut events = vec![Vec::new(), Vec::new(), Vec::new()];
    let total =
        |seen: &HashMap<(usize, NodeId), Vec<u64>>| seen.values().map(Vec::len).sum::<usize>();
    while total(&seen) < 6 * count as usize {
        assert!(
            started.elapsed() < DEADLINE,
            "only {} arrived",
            total(&seen)
        );
        if next < count {
            for (node, links) in nodes.iter_mut().zip(&outbound) {
                for link in links {
                    send_with_backpressure(
                        node,
                        *link,
                        &request(next, 200),
                        &mut Vec::new(),
                        started,
                    );
                }
            }
            next += 1;
        }
        let mut refs: Vec<&mut Box<dyn Transport>> = nodes.iter_mut().collect();
        pump(&mut refs, &mut events);
        for (at, list) in events.iter_mut().enumerate() {
            for event in list.drain(..) {
                if let Some((_, Some(peer), seq, _)) = request_seq(&event) {
                    seen.entry((at, peer)).or_default().push(seq);
                }
            }
        }
    }
    for ((at, peer), seqs) in seen {
        assert_eq!(
            seqs,
            (0..count).collect::<Vec<_>>(),
            "node {} from {peer}",
            at + 1
        );
    }
}

fn restart_receiver_and_reconnect(backend: BackendChoice) {
    let mut sender = endpoint(backend, 1);
    let mut receiver = endpoint(backend, 2);
    let addr = address(receiver.as_ref());
    let connection = sender.connect(NodeId(2), addr).expect("room");
    let started = Instant::now();
    let mut connects = 0;
    let mut next = 0u64;
    let mut last_seen: Option<u64> = None;
    let mut restarted = false;
    let mut after_restart = 0;
    while after_restart < 100 {
        assert!(
            started.elapsed() < DEADLINE,
            "no delivery after the restart"
        );
        if sender.queued_bytes(connection) < 64 << 10 {
            sender.send(connection, &request(next, 32)).expect("room");
            next += 1;
        }
        let mut events = Vec::new();
        sender.turn(Duration::ZERO, &mut events).expect("turns");
        connects += events
            .iter()
            .filter(|event| matches!(event, Event::Connected { .. }))
            .count();
        events.clear();
        receiver
            .turn(Duration::from_millis(1), &mut events)
            .expect("turns");
        for event in &events {
            if let Some((_, _, seq, _)) = request_seq(event) {
                assert!(
                    last_seen.is_none_or(|last| seq > last),
                    "order kept across reconnects"
                );
                last_seen = Some(seq);
                if restarted {
                    after_restart += 1;
                }
            }
        }
        if !restarted && last_seen.is_some_and(|seq| seq > 500) {
            drop(std::mem::replace(&mut receiver, endpoint(backend, 3)));
            let mut config = common::config(backend, 2);
            config.listen = Some(addr);
            receiver = synod_net::transport::open(config).expect("rebinds the same port");
            restarted = true;
        }
    }
    assert!(
        connects >= 2,
        "the sender reconnected ({connects} connects)"
    );
}

/// The consumer keeps every frame (as a replica keeps batches): receive
/// buffers stay referenced, yet receiving never stalls.
fn held_frames_do_not_stall_receiving(backend: BackendChoice) {
    let mut sender = endpoint(backend, 1);
    let mut receiver = endpoint(backend, 2);
    let connection = sender
        .connect(NodeId(2), address(receiver.as_ref()))
        .expect("room");
    let (count, started) = (3_000u64, Instant::now());
    let (mut next, mut kept) = (0u64, Vec::new());
    while (kept.len() as u64) < count {
        assert!(
            started.elapsed() < DEADLINE,
            "stalled after {} frames",
            kept.len()
        );
        if next < count && sender.send(connection, &request(next, 2_000)).is_ok() {
            next += 1;
        }
        sender.turn(Duration::ZERO, &mut Vec::new()).expect("turns");
        let mut events = Vec::new();
        receiver.turn(Duration::ZERO, &mut events).expect("turns");
        kept.extend(
            events
                .into_iter()
                .filter(|event| request_seq(event).is_some()),
        );
    }
    let seqs: Vec<u64> = kept
        .iter()
        .filter_map(request_seq)
        .map(|(_, _, seq, _)| seq)
        .collect();
    assert_eq!(seqs, (0..count).collect::<Vec<_>>());
}

/// A peer that never answers: the queue fills to its limit and pushes back,
/// and nothing grows however long the sender keeps trying.
fn vanished_peer_costs_bounded_memory(backend: BackendChoice) {
    let gone = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = gone.local_addr().expect("bound");
    drop(gone);
    let mut config = common::config(backend, 1);
    config.body_bytes_max = 64 << 10;
    config.send_queue_bytes_max = 1 << 20;
    config.reconnect_delay_min_ms = 1;
    config.reconnect_delay_max_ms = 4;
    let limit = config.send_queue_bytes_max;
    let mut sender = synod_net::transport::open(config).expect("opens");
    let connection = sender.connect(NodeId(2), addr).expect("room");
    let mut pushed_back = 0;
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(300) {
        for seq in 0..100 {
            if sender.send(connection, &request(seq, 1000)).is_err() {
                pushed_back += 1;
            }
        }
        let mut events = Vec::new();
        sender
            .turn(Duration::from_millis(1), &mut events)
            .expect("turns");
        assert!(
            events
                .iter()
                .all(|event| !matches!(event, Event::Connected { .. })),
            "nobody listens"
        );
        assert!(
            sender.queued_bytes(connection) <= limit,
            "the queue stays within its limit"
        );
    }
    assert!(pushed_back > 0, "the producer was pushed back");
}

/// SQPOLL mode (for dedicated cores) delivers the same; skipped where the
/// kernel refuses a polling thread.
#[test]
fn io_uring_sqpoll_mode_delivers_in_order() {
    let mut config = common::config(BackendChoice::IoUring, 2);
    config.sqpoll = synod_net::transport::SqPoll::On { idle_ms: 5 };
    let mut receiver = match synod_net::transport::open(config) {
        Ok(receiver) => receiver,
        Err(error) => return eprintln!("SQPOLL unavailable here, skipped: {error}"),
    };
    let mut sender = endpoint(BackendChoice::Portable, 1);
    let connection = sender
        .connect(NodeId(2), address(receiver.as_ref()))
        .expect("room");
    let started = Instant::now();
    let (mut next, mut received) = (0u64, Vec::new());
    while received.len() < 2_000 {
        assert!(
            started.elapsed() < DEADLINE,
            "only {} arrived",
            received.len()
        );
        if next < 2_000 && sender.send(connection, &request(next, 50)).is_ok() {
            next += 1;
        }
        sender.turn(Duration::ZERO, &mut Vec::new()).expect("turns");
        let mut events = Vec::new();
        receiver
            .turn(Duration::from_millis(1), &mut events)
            .expect("turns");
        received.extend(
            events
                .iter()
                .filter_map(request_seq)
                .map(|(_, _, seq, _)| seq),
        );
    }
    assert_eq!(received, (0..2_000).collect::<Vec<_>>());
}

/// Every receive buffer is written from its first page boundary on
/// (`bytes::receive_buffer`): a frame that arrives alone, at the stream's
/// 16-byte grid, in one receive (a provided buffer on io_uring, a pooled
/// buffer on the portable back end) is taken in place with its header on
/// that boundary, so its body lies `HEADER_BYTES` past a page.
fn alone_in_a_receive_on_a_page(backend: BackendChoice) {
    let mut server = endpoint(backend, 1);
    let mut client = TcpStream::connect(address(server.as_ref())).expect("connects");
    client.set_nodelay(true).expect("nodelay");
    let hello = Hello {
        cluster_id: 99,
        node: NodeId(5),
        shard: 0,
    };
    client
        .write_all(&encode(&hello, 1 << 20).expect("encodes"))
        .expect("writes");
    let started = Instant::now();
    let mut seen = Vec::new();
    while !seen
        .iter()
        .any(|event| matches!(event, Event::Identified { .. }))
    {
        assert!(started.elapsed() < DEADLINE, "no hello: {seen:?}");
        server
            .turn(Duration::from_millis(1), &mut seen)
            .expect("turns");
    }
    // Payloads that fit a 16 KiB provided buffer whole.
    for (seq, payload) in [100usize, 1_000, 4_000, 12_000, 8, 3_000]
        .into_iter()
        .enumerate()
    {
        let seq = seq as u64;
        client
            .write_all(&encode(&request(seq, payload), 1 << 20).expect("encodes"))
            .expect("writes");
        let mut events = Vec::new();
        let frame = loop {
            assert!(started.elapsed() < DEADLINE, "request {seq} never arrived");
            server
                .turn(Duration::from_millis(1), &mut events)
                .expect("turns");
            if let Some(at) = events.iter().position(|event| request_seq(event).is_some()) {
                let Event::Frame { frame, .. } = events.swap_remove(at) else {
                    unreachable!("request_seq matched a frame");
                };
                break frame;
            }
        };
        let body = frame.body().as_slice();
        assert_eq!(
            body.as_ptr() as usize % 4096,
            HEADER_BYTES,
            "{backend:?}: request {seq} ({payload} B) lies in place, its header on a page"
        );
    }
}

macro_rules! both_backends {
    ($($name:ident => $body:expr;)*) => {
        mod portable {
            use super::*;
            $(#[test] fn $name() { let backend = BackendChoice::Portable; ($body)(backend) })*
        }
        mod io_uring {
            use super::*;
            $(#[test] fn $name() { let backend = BackendChoice::IoUring; ($body)(backend) })*
        }
    };
}

both_backends! {
    ordered_delivery_under_load_two_endpoints => |backend| ordered_delivery_two_endpoints(backend, 50_000, 100);
    large_frames_survive_partial_reads_and_writes => |backend| ordered_delivery_two_endpoints(backend, 200, 300 << 10);
    ordered_delivery_under_load_three_endpoints => three_endpoints_all_to_all;
    peer_restart_and_reconnect => restart_receiver_and_reconnect;
    vanished_peer_pushes_back_with_bounded_memory => vanished_peer_costs_bounded_memory;
    frames_held_by_the_consumer_do_not_stall_receiving => held_frames_do_not_stall_receiving;
    frames_received_alone_start_on_a_page => alone_in_a_receive_on_a_page;
}

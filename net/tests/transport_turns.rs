//! What ends a turn's wait: an answer does, a send that leaves at once does
//! not (so a round trip costs the io_uring back end one turn, one
//! `io_uring_enter`, per side), and room in a queue that refused a frame
//! does at once (so a producer pushed back never sleeps out its timeout).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::{address, endpoint, DEADLINE};
use synod_net::samples::request;
use synod_net::transport::{BackendChoice, Event, SendError, Transport};
use synod_net::wire::{ClientId, ClientResponse, NodeId, Outcome, Seq};

/// Takes every frame on every connection, answering each request with
/// `answer_bytes` of payload when given, turning with `turn_wait`, until
/// told to stop.
fn spawn_server(
    backend: BackendChoice,
    answer_bytes: Option<usize>,
    turn_wait: Duration,
    stop: Arc<AtomicBool>,
) -> (thread::JoinHandle<()>, std::net::SocketAddr) {
    let (address_sender, address_receiver) = mpsc::channel();
    let server = thread::spawn(move || {
        let mut config = common::config(backend, 2);
        config.body_bytes_max = 8 << 20;
        config.send_queue_bytes_max = 32 << 20;
        let mut server = synod_net::transport::open(config).expect("opens");
        address_sender
            .send(address(server.as_ref()))
            .expect("the test waits for the address");
        let response = ClientResponse {
            client_id: ClientId(1),
            seq: Seq(1),
            outcome: Outcome::Done {
                payload: vec![7; answer_bytes.unwrap_or(0)],
            },
        };
        let mut events = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            server
                .turn(turn_wait, &mut events)
                .expect("the server turns");
            for event in events.drain(..) {
                if let (Some(_), Event::Frame { connection, .. }) = (answer_bytes, event) {
                    // The connection may have closed in the same turn.
                    let _ = server.send(connection, &response);
                }
            }
        }
    });
    let address = address_receiver.recv().expect("the server starts");
    (server, address)
}

#[test]
fn an_io_uring_round_trip_takes_one_turn_of_the_caller() {
    let stop = Arc::new(AtomicBool::new(false));
    let (server, server_address) = spawn_server(
        BackendChoice::IoUring,
        Some(100),
        Duration::from_millis(5),
        Arc::clone(&stop),
    );
    let mut client = endpoint(BackendChoice::IoUring, 1);
    let mut events = Vec::new();
    let connection = common::connect_and_wait(&mut client, NodeId(2), server_address, &mut events);
    let started = Instant::now();
    let round_trips = 500u64;
    let mut turns = 0u64;
    for seq in 0..round_trips {
        client.send(connection, &request(seq, 100)).expect("room");
        loop {
            assert!(started.elapsed() < DEADLINE, "no answer to {seq}");
            events.clear();
            // Long enough that only the answer (or the driver's own timer)
            // ends the turn, even on a busy machine.
            client
                .turn(Duration::from_secs(1), &mut events)
                .expect("turns");
            turns += 1;
            if events
                .iter()
                .any(|event| matches!(event, Event::Frame { .. }))
            {
                break;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    drop(client);
    server.join().expect("the server stops");
    // A turn that submitted the request used to return on the request's own
    // send completion, a second turn waited for the answer. A few turns may
    // still end early (the driver's timer), hence the slack.
    assert!(
        turns <= round_trips + round_trips / 5,
        "{turns} turns for {round_trips} round trips"
    );
}

/// The receiver drains in its own thread and never answers; the producer
/// fills its bounded queue and turns with a long timeout whenever it is
/// refused, so only room in its queue can end those turns early.
fn refused_producer_is_woken_by_room(backend: BackendChoice) {
    let stop = Arc::new(AtomicBool::new(false));
    let (server, server_address) =
        spawn_server(backend, None, Duration::from_millis(5), Arc::clone(&stop));
    let mut config = common::config(backend, 1);
    config.listen = None;
    // A queue far smaller than the socket's buffer: its sends leave at once.
    config.body_bytes_max = 4 << 10;
    config.send_queue_bytes_max = 8 << 10;
    let mut client = synod_net::transport::open(config).expect("opens");
    let connection = client.connect(NodeId(2), server_address).expect("room");
    // A turn that sleeps out this wait fails the test below (a third of it
    // for all 20,000 frames, which a busy machine sends in a few seconds).
    let long = Duration::from_secs(30);
    let (started, mut events) = (Instant::now(), Vec::new());
    let (mut refusals, mut seq) = (0u32, 0u64);
    while seq < 20_000 {
        match client.send(connection, &request(seq, 1000)) {
            Ok(()) => seq += 1,
            Err(SendError::QueueFull { .. }) => {
                refusals += 1;
                client.turn(long, &mut events).expect("turns");
                events.clear();
            }
            Err(error) => panic!("send failed: {error}"),
        }
        assert!(
            started.elapsed() < long / 3,
            "a refused producer slept out its timeout ({refusals} refusals, {seq} sent)"
        );
    }
    stop.store(true, Ordering::Relaxed);
    drop(client);
    server.join().expect("the server stops");
    assert!(refusals > 10, "the queue pushed back ({refusals} refusals)");
}

/// Answers of 7 MiB, more than a socket takes at once, from a server whose
/// turns would otherwise wait 30 seconds: an answer that leaves in part
/// must not leave its sender waiting for the peer, who waits for the rest.
/// A stall costs the server's whole wait, so each answer gets a third of
/// it: far more than a busy machine needs (a few tenths of a second for
/// all ten), far less than a stall.
fn large_answers_do_not_stall(backend: BackendChoice) {
    const SERVER_WAIT: Duration = Duration::from_secs(30);
    let stop = Arc::new(AtomicBool::new(false));
    let (server, server_address) =
        spawn_server(backend, Some(7 << 20), SERVER_WAIT, Arc::clone(&stop));
    let mut config = common::config(backend, 1);
    config.listen = None;
    config.body_bytes_max = 8 << 20;
    config.send_queue_bytes_max = 32 << 20;
    let mut client = synod_net::transport::open(config).expect("opens");
    let connection = client.connect(NodeId(2), server_address).expect("room");
    let mut events = Vec::new();
    for seq in 0..10 {
        let asked = Instant::now();
        client.send(connection, &request(seq, 100)).expect("room");
        while !events
            .iter()
            .any(|event| matches!(event, Event::Frame { .. }))
        {
            client
                .turn(Duration::from_millis(5), &mut events)
                .expect("turns");
            assert!(
                asked.elapsed() < SERVER_WAIT / 3,
                "answer {seq} stalled ({:?})",
                asked.elapsed()
            );
        }
        events.clear();
    }
    stop.store(true, Ordering::Relaxed);
    // Closing the connection ends the server's wait.
    drop(client);
    server.join().expect("the server stops");
}

/// While a stream comes in, the io_uring back end lets the kernel gather
/// completions before it wakes (a minimum wait); a lone frame after the
/// stream still ends such a wait when it arrives, not when the driver's
/// next timer fires (here 20 s away).
#[test]
fn a_coalesced_wait_ends_at_a_lone_frame() {
    let mut receiver =
        synod_net::transport::uring::UringDriver::open(common::config(BackendChoice::IoUring, 2))
            .expect("opens");
    if !receiver.coalesces() {
        eprintln!("skipped: the kernel has no IORING_FEAT_MIN_TIMEOUT");
        return;
    }
    let receiver_address = address(&receiver);
    // Orders to the sender: how many frames to send at once; 0 stops it.
    let (orders, orders_received) = mpsc::channel::<u64>();
    let sender = thread::spawn(move || {
        let mut sender = endpoint(BackendChoice::IoUring, 1);
        let connection = sender.connect(NodeId(2), receiver_address).expect("room");
        let (started, mut events, mut seq) = (Instant::now(), Vec::new(), 0u64);
        loop {
            match orders_received.try_recv() {
                Ok(0) | Err(mpsc::TryRecvError::Disconnected) => break,
                Ok(count) => {
                    for _ in 0..count {
                        seq += 1;
                        let frame = request(seq, 1000);
                        common::send_with_backpressure(
                            &mut sender,
                            connection,
                            &frame,
                            &mut events,
                            started,
                        );
                    }
                }
                Err(mpsc::TryRecvError::Empty) => {}
            }
            sender
                .turn(Duration::from_millis(1), &mut events)
                .expect("turns");
            events.clear();
        }
    });
    let (started, mut events) = (Instant::now(), Vec::new());
    let mut receive = |receiver: &mut synod_net::transport::uring::UringDriver, frames: u64| {
        // Returns how long the turn that brought the last frame took, and
        // whether its wait was a coalesced one.
        let mut seen = 0;
        loop {
            assert!(started.elapsed() < DEADLINE, "frames missing");
            let (coalesced_before, turn_started) = (receiver.coalesced_waits(), Instant::now());
            events.clear();
            receiver
                .turn(Duration::from_secs(20), &mut events)
                .expect("turns");
            seen += events
                .iter()
                .filter(|event| matches!(event, Event::Frame { .. }))
                .count() as u64;
            if seen >= frames {
                let coalesced = receiver.coalesced_waits() > coalesced_before;
                return (turn_started.elapsed(), coalesced);
            }
        }
    };
    // A round until the lone frame met a coalesced wait: the turn after a
    // stream's last bytes waits coalesced, unless something else (a buffer
    // or a timer) woke it in between.
    let mut lone_frames_in_coalesced_waits = 0;
    for _ in 0..10 {
        orders.send(300).expect("the sender runs");
        let _ = receive(&mut receiver, 300);
        thread::sleep(Duration::from_millis(50));
        orders.send(1).expect("the sender runs");
        let (took, coalesced) = receive(&mut receiver, 1);
        assert!(
            took < Duration::from_secs(10),
            "a lone frame waited {took:?} in a turn (coalesced: {coalesced})"
        );
        lone_frames_in_coalesced_waits += u32::from(coalesced);
        if lone_frames_in_coalesced_waits >= 3 {
            break;
        }
    }
    orders.send(0).expect("the sender runs");
    sender.join().expect("the sender stops");
    assert!(
        lone_frames_in_coalesced_waits > 0,
        "no lone frame arrived in a coalesced wait"
    );
}

/// Busy polling (`Config::busy_poll_us`, for threads with a CPU of their
/// own) changes how a turn waits, not what it delivers: two endpoints that
/// both poll ping-pong every request to its answer in order, and a quiet
/// turn still ends by its own timeout, not after the far longer polling
/// budget.
fn busy_polling_answers_in_order_and_keeps_the_turns_timeout(backend: BackendChoice) {
    let config = move |node| {
        let mut config = common::config(backend, node);
        config.busy_poll_us = 60_000_000;
        config
    };
    let stop = Arc::new(AtomicBool::new(false));
    let (server_stop, (address_sender, address_received)) = (Arc::clone(&stop), mpsc::channel());
    let server = thread::spawn(move || {
        let mut server = synod_net::transport::open(config(2)).expect("opens");
        address_sender
            .send(address(server.as_ref()))
            .expect("the test waits for the address");
        let mut events = Vec::new();
        while !server_stop.load(Ordering::Relaxed) {
            server
                .turn(Duration::from_millis(5), &mut events)
                .expect("the server turns");
            for event in events.drain(..) {
                if let Some((connection, _, seq, _)) = common::request_seq(&event) {
                    let answer = ClientResponse {
                        client_id: ClientId(1),
                        seq: Seq(seq),
                        outcome: Outcome::Done { payload: vec![] },
                    };
                    // The connection may have closed in the same turn.
                    let _ = server.send(connection, &answer);
                }
            }
        }
    });
    let server_address = address_received.recv().expect("the server starts");
    let mut client = synod_net::transport::open(config(1)).expect("opens");
    let quiet_turn = Instant::now();
    client
        .turn(Duration::from_millis(20), &mut Vec::new())
        .expect("turns");
    assert!(
        quiet_turn.elapsed() < DEADLINE,
        "a quiet turn of 20 ms polled for {:?}",
        quiet_turn.elapsed()
    );
    let connection = client.connect(NodeId(2), server_address).expect("room");
    let (started, mut events) = (Instant::now(), Vec::new());
    for seq in 0..300u64 {
        common::send_with_backpressure(
            &mut client,
            connection,
            &request(seq, 100),
            &mut events,
            started,
        );
        let answered = loop {
            assert!(started.elapsed() < DEADLINE, "no answer to {seq}");
            client
                .turn(Duration::from_millis(5), &mut events)
                .expect("the client turns");
            let answer = events.drain(..).find_map(|event| match event {
                Event::Frame { frame, .. } => match frame.archived() {
                    synod_net::frame::Archived::Response(response) => {
                        Some(response.seq.to_native().0)
                    }
                    _ => None,
                },
                _ => None,
            });
            if let Some(answer) = answer {
                break answer;
            }
        };
        assert_eq!(answered, seq, "answers come in order");
    }
    stop.store(true, Ordering::Relaxed);
    drop(client);
    server.join().expect("the server stops");
}

/// A busy-polling turn that polls out part of its timeout then sleeps for
/// the rest, not for its whole timeout again (a 300 ms turn that polls
/// 200 ms ends by 300 ms, not 500). The fastest of a few turns counts: a
/// busy machine only delays them. (How the portable back end rounds the
/// rest to whole milliseconds is a unit test of its own.)
fn busy_polling_turn_sleeps_only_the_rest_of_its_timeout(backend: BackendChoice) {
    let (timeout, limit) = (Duration::from_millis(300), Duration::from_millis(450));
    let mut config = common::config(backend, 1);
    config.busy_poll_us = 200_000;
    let mut transport = synod_net::transport::open(config).expect("opens");
    let fastest = (0..3)
        .map(|_| {
            let started = Instant::now();
            transport.turn(timeout, &mut Vec::new()).expect("turns");
            started.elapsed()
        })
        .min()
        .expect("three turns");
    assert!(
        fastest < limit,
        "a turn of {timeout:?} polling 200 ms took {fastest:?}"
    );
}

/// A busy-polling turn finds a frame that arrives while it polls. It polls
/// for longer than its timeout, so it never sleeps: a frame the polling
/// missed would come out only when the timeout (10 s) is over.
fn busy_polling_turn_finds_a_frame_arriving_while_it_polls(backend: BackendChoice) {
    let mut config = common::config(backend, 2);
    config.busy_poll_us = 60_000_000;
    let mut server = synod_net::transport::open(config).expect("opens");
    let server_address = address(server.as_ref());
    let (go, going) = mpsc::channel::<()>();
    let client = thread::spawn(move || {
        let mut client = endpoint(backend, 1);
        let mut events = Vec::new();
        let connection =
            common::connect_and_wait(&mut client, NodeId(2), server_address, &mut events);
        going.recv().expect("the server is accepted");
        thread::sleep(Duration::from_millis(20));
        client.send(connection, &request(1, 100)).expect("room");
        client
            .turn(Duration::ZERO, &mut events)
            .expect("the client turns");
        // Keeps the connection until the test is done.
        going.recv().expect("the test ends");
    });
    let (started, mut events) = (Instant::now(), Vec::new());
    while !events
        .iter()
        .any(|event| matches!(event, Event::Accepted { .. }))
    {
        assert!(started.elapsed() < DEADLINE, "no accept");
        server
            .turn(Duration::from_millis(1), &mut events)
            .expect("the server turns");
    }
    go.send(()).expect("the client waits");
    let started = Instant::now();
    while !events
        .iter()
        .any(|event| common::request_seq(event).is_some())
    {
        assert!(started.elapsed() < DEADLINE, "no frame");
        // The portable back end does not wait while the caller holds events.
        events.clear();
        server
            .turn(Duration::from_secs(10), &mut events)
            .expect("the server turns");
    }
    let took = started.elapsed();
    go.send(()).expect("the client waits");
    client.join().expect("the client finishes");
    assert!(
        took < Duration::from_secs(5),
        "the frame came at the end of the turn's timeout, after {took:?}: polling missed it"
    );
}

macro_rules! both_backends {
    ($($name:ident,)*) => {
        mod portable {
            use super::*;
            $(#[test] fn $name() { super::$name(BackendChoice::Portable) })*
        }
        mod io_uring {
            use super::*;
            $(#[test] fn $name() { super::$name(BackendChoice::IoUring) })*
        }
    };
}

both_backends! {
    refused_producer_is_woken_by_room,
    large_answers_do_not_stall,
    busy_polling_answers_in_order_and_keeps_the_turns_timeout,
    busy_polling_turn_sleeps_only_the_rest_of_its_timeout,
    busy_polling_turn_finds_a_frame_arriving_while_it_polls,
}

//! Helpers for the transport tests: endpoints on loopback port 0, a pump
//! that turns several transports in one thread, bounded by a deadline.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use synod_net::frame::Archived;
use synod_net::transport::{
    self, BackendChoice, Config, ConnectionId, Event, SendError, Transport, ZeroCopy,
};
use synod_net::wire::NodeId;

pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn config(backend: BackendChoice, node: u8) -> Config {
    let mut config = Config::new(NodeId(node));
    config.cluster_id = 99;
    config.listen = Some("127.0.0.1:0".parse().expect("an address"));
    config.backend = backend;
    config.body_bytes_max = 1 << 20;
    config.send_queue_bytes_max = 4 << 20;
    config.provided_buffer_count = 64;
    config.connections_max = 32;
    // Exercise SEND_ZC on loopback too (off there by default).
    config.zero_copy = ZeroCopy::AboveThresholdEverywhere;
    config.send_zero_copy_bytes_min = 16 << 10;
    config
}

pub fn endpoint(backend: BackendChoice, node: u8) -> Box<dyn Transport> {
    let transport = transport::open(config(backend, node)).expect("the transport opens");
    if backend == BackendChoice::IoUring {
        assert_eq!(transport.backend(), transport::Backend::IoUring);
    }
    transport
}

pub fn address(transport: &dyn Transport) -> SocketAddr {
    transport.local_addr().expect("listening")
}

/// Turns every transport once, collecting events per transport.
pub fn pump(transports: &mut [&mut Box<dyn Transport>], events: &mut [Vec<Event>]) {
    for (transport, events) in transports.iter_mut().zip(events.iter_mut()) {
        transport
            .turn(Duration::from_millis(1), events)
            .expect("the turn succeeds");
    }
}

/// Dials `peer` at `address` and turns `transport` (1 ms turns) until the
/// connection is up; the events of those turns stay in `events`.
pub fn connect_and_wait(
    transport: &mut Box<dyn Transport>,
    peer: NodeId,
    address: SocketAddr,
    events: &mut Vec<Event>,
) -> ConnectionId {
    let connection = transport.connect(peer, address).expect("room");
    let started = Instant::now();
    while !events
        .iter()
        .any(|event| matches!(event, Event::Connected { .. }))
    {
        assert!(started.elapsed() < DEADLINE, "no connection");
        transport
            .turn(Duration::from_millis(1), events)
            .expect("the turn succeeds");
    }
    connection
}

/// How many connections `events` says were accepted.
pub fn accepted(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|event| matches!(event, Event::Accepted { .. }))
        .count()
}

/// The request sequence number a frame carries.
pub fn request_seq(event: &Event) -> Option<(ConnectionId, Option<NodeId>, u64, usize)> {
    match event {
        Event::Frame {
            connection,
            peer,
            frame,
        } => match frame.archived() {
            Archived::Request(request) => Some((
                *connection,
                *peer,
                request.seq.to_native().0,
                request.payload.len(),
            )),
            _ => None,
        },
        _ => None,
    }
}

/// Sends, turning the sender while its queue pushes back.
pub fn send_with_backpressure(
    transport: &mut Box<dyn Transport>,
    connection: ConnectionId,
    value: &dyn synod_net::frame::Encode,
    sink: &mut Vec<Event>,
    started: Instant,
) {
    loop {
        match transport.send(connection, value) {
            Ok(()) => return,
            Err(SendError::QueueFull { .. }) => {
                transport
                    .turn(Duration::from_millis(1), sink)
                    .expect("the turn succeeds");
                assert!(started.elapsed() < DEADLINE, "stuck pushing back");
            }
            Err(error) => panic!("send failed: {error}"),
        }
    }
}

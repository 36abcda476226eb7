//! `synod bench net`: ping-pong and streaming over loopback through the
//! io_uring and the portable transport in the same run (interleaved
//! repeats, medians), with a blocking-socket ping-pong as the baseline.
//!
//! Each run has a server thread and a client thread, each with its own
//! transport (one ring per thread), placed as [`Pin`] says (by default
//! ping-pong over one or two connections on one CPU, everything else on
//! two). Ping-pong keeps one request in flight
//! per connection and counts round trips; streaming keeps each connection's
//! send queue topped up and counts what the server receives. CPU time is
//! both threads' user + system time over the measured interval.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use synod_net::frame::{encode, Encode};
use synod_net::samples::request;
use synod_net::transport::{self, Backend, BackendChoice, Config, ConnectionId, Event, Transport};
use synod_net::wire::{ClientId, ClientResponse, NodeId, Outcome, Seq};

mod placement;

use placement::Pinned;
pub use placement::{Pin, SHARED_CONNECTIONS_BELOW};

/// What a run measures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// One request in flight per connection; round trips per second.
    PingPong,
    /// Send queues kept full; messages received per second.
    Streaming,
}

/// The benchmark's knobs; [`NetBench::default`] is the full table.
#[derive(Clone, Debug)]
pub struct NetBench {
    /// Payload sizes in bytes.
    pub sizes: Vec<usize>,
    /// Connection counts.
    pub connections: Vec<usize>,
    /// Modes.
    pub modes: Vec<Mode>,
    /// Back ends to compare.
    pub backends: Vec<BackendChoice>,
    /// Repeats of the whole grid, interleaved.
    pub repeats: usize,
    /// How every run lasts, and how it sets up and places its transports.
    pub setup: Setup,
}

/// How one run sets up and places its transports, beyond its cell.
#[derive(Clone, Copy, Debug)]
pub struct Setup {
    /// How long the run measures.
    pub duration: Duration,
    /// `SEND_ZC` threshold for io_uring (None: the default).
    pub send_zero_copy_bytes_min: Option<usize>,
    /// Where the two threads run.
    pub pin: Pin,
    /// `Config::busy_poll_us` for both transports.
    pub busy_poll_us: u32,
}

impl Setup {
    /// Runs of `duration`, everything else the default.
    #[must_use]
    pub fn lasting(duration: Duration) -> Setup {
        Setup {
            duration,
            send_zero_copy_bytes_min: None,
            pin: Pin::Auto,
            busy_poll_us: 0,
        }
    }
}

impl Default for NetBench {
    fn default() -> NetBench {
        NetBench {
            sizes: vec![64, 1024, 64 << 10],
            connections: vec![1, 2, 64],
            modes: vec![Mode::PingPong, Mode::Streaming],
            backends: vec![BackendChoice::IoUring, BackendChoice::Portable],
            repeats: 5,
            setup: Setup::lasting(Duration::from_millis(500)),
        }
    }
}

/// One run's figures.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sample {
    /// Messages (round trips in ping-pong) per second.
    pub messages_per_second: f64,
    /// Payload bytes per second (one direction).
    pub bytes_per_second: f64,
    /// CPU nanoseconds (both threads) per message.
    pub cpu_ns_per_message: f64,
    /// The client thread's share of `cpu_ns_per_message`.
    pub client_cpu_ns_per_message: f64,
}

/// The median of a cell's repeats, and the back end that actually ran.
#[derive(Clone, Debug)]
pub struct Cell {
    /// The mode.
    pub mode: Mode,
    /// Payload bytes.
    pub size: usize,
    /// Connections.
    pub connections: usize,
    /// `io_uring`, `portable`, or `blocking` for the baseline.
    pub backend: String,
    /// Medians over the repeats.
    pub median: Sample,
}

fn thread_cpu() -> Duration {
    // SAFETY: rusage is plain old data; getrusage fills it for this thread.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is to a live rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &raw mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn config(backend: BackendChoice, node: u8, listen: bool, size: usize, setup: &Setup) -> Config {
    let mut config = Config::new(NodeId(node));
    config.backend = backend;
    config.busy_poll_us = setup.busy_poll_us;
    config.body_bytes_max = (size as u32 + 4096).max(1 << 16);
    config.send_queue_bytes_max = (4 * (size + 4096)).max(1 << 20);
    config.connections_max = 128;
    if listen {
        config.listen = Some("127.0.0.1:0".parse().expect("a loopback address"));
    }
    if let Some(bytes) = setup.send_zero_copy_bytes_min {
        // An explicit threshold is a measurement: apply it on loopback too.
        config.send_zero_copy_bytes_min = bytes;
        config.zero_copy = transport::ZeroCopy::AboveThresholdEverywhere;
    }
    config
}

/// How long a benchmark loop turn may wait; events end the wait sooner.
const TURN_WAIT: Duration = Duration::from_millis(5);
const WARMING: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

struct ServerReport {
    received: u64,
    cpu: Duration,
}

fn server(
    mut transport: Box<dyn Transport>,
    mode: Mode,
    size: usize,
    phase: Arc<AtomicU8>,
) -> ServerReport {
    let response = ClientResponse {
        client_id: ClientId(1),
        seq: Seq(1),
        outcome: Outcome::Done {
            payload: vec![1; size],
        },
    };
    let mut events = Vec::new();
    let (mut received, mut cpu_start, mut measuring) = (0u64, Duration::ZERO, false);
    loop {
        match phase.load(Ordering::Acquire) {
            MEASURING if !measuring => {
                measuring = true;
                cpu_start = thread_cpu();
                received = 0;
            }
            STOPPED => break,
            _ => {}
        }
        transport
            .turn(TURN_WAIT, &mut events)
            .expect("the server's turn");
        for event in events.drain(..) {
            if let Event::Frame { connection, .. } = event {
                received += 1;
                if mode == Mode::PingPong {
                    let _ = transport.send(connection, &response);
                }
            }
        }
    }
    ServerReport {
        received,
        cpu: thread_cpu().saturating_sub(cpu_start),
    }
}

/// Connects `count` connections and waits until all are up.
fn connect_all(
    client: &mut Box<dyn Transport>,
    address: SocketAddr,
    count: usize,
) -> Vec<ConnectionId> {
    let connections: Vec<_> = (0..count)
        .map(|_| {
            client
                .connect(NodeId(1), address)
                .expect("room for the connections")
        })
        .collect();
    let (mut up, mut events, started) = (0, Vec::new(), Instant::now());
    while up < count {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "connections did not come up"
        );
        client
            .turn(TURN_WAIT, &mut events)
            .expect("the client's turn");
        up += events
            .drain(..)
            .filter(|event| matches!(event, Event::Connected { .. }))
            .count();
    }
    connections
}

/// Runs the client side for `duration`; returns messages it counted
/// (round trips in ping-pong, sends in streaming) and its CPU time.
fn client_loop(
    client: &mut Box<dyn Transport>,
    connections: &[ConnectionId],
    mode: Mode,
    size: usize,
    duration: Duration,
    phase: &AtomicU8,
) -> (u64, Duration, Duration) {
    let message = request(1, size);
    let window = (4 * (size + 256)).max(64 << 10);
    let mut events = Vec::new();
    let mut round_trips = 0u64;
    if mode == Mode::PingPong {
        for &connection in connections {
            client
                .send(connection, &message)
                .expect("an empty queue takes one message");
        }
    }
    phase.store(MEASURING, Ordering::Release);
    let (started, cpu_start) = (Instant::now(), thread_cpu());
    while started.elapsed() < duration {
        let mut queued = false;
        if mode == Mode::Streaming {
            for &connection in connections {
                while client.queued_bytes(connection) < window
                    && client.send(connection, &message).is_ok()
                {
                    queued = true;
                }
            }
        }
        // A producer with more to send does not wait in the turn: a turn
        // waits for something to arrive, not for its own sends to leave.
        let wait = if queued { Duration::ZERO } else { TURN_WAIT };
        client.turn(wait, &mut events).expect("the client's turn");
        for event in events.drain(..) {
            if let Event::Frame { connection, .. } = event {
                round_trips += 1;
                let _ = client.send(connection, &message);
            }
        }
    }
    let (elapsed, cpu) = (started.elapsed(), thread_cpu().saturating_sub(cpu_start));
    phase.store(STOPPED, Ordering::Release);
    (round_trips, elapsed, cpu)
}

/// One run of one cell on one back end; returns the back end that ran.
///
/// # Panics
/// When a transport cannot open or a connection does not come up.
pub fn run_once(
    mode: Mode,
    backend: BackendChoice,
    size: usize,
    connections: usize,
    setup: &Setup,
) -> (Backend, Sample) {
    let phase = Arc::new(AtomicU8::new(WARMING));
    let (address_sender, address) = mpsc::channel();
    let server_phase = Arc::clone(&phase);
    let (server_cpu, client_cpu) = setup.pin.cpus(mode, connections, setup.busy_poll_us > 0);
    let _pinned = Pinned::to(client_cpu);
    let server_config = config(backend, 1, true, size, setup);
    let server = thread::spawn(move || {
        let _pinned = Pinned::to(server_cpu);
        let transport = transport::open(server_config).expect("the server opens");
        address_sender
            .send(transport.local_addr().expect("listening"))
            .expect("the client waits");
        server(transport, mode, size, server_phase)
    });
    let address = address.recv().expect("the server starts");
    let mut client =
        transport::open(config(backend, 2, false, size, setup)).expect("the client opens");
    let ran = client.backend();
    let links = connect_all(&mut client, address, connections);
    let (round_trips, elapsed, client_cpu) =
        client_loop(&mut client, &links, mode, size, setup.duration, &phase);
    drop(client); // closes the connections, which wakes the server to see the stop
    let report = server.join().expect("the server thread finishes");
    let messages = if mode == Mode::PingPong {
        round_trips
    } else {
        report.received
    };
    let seconds = elapsed.as_secs_f64();
    let cpu = (client_cpu + report.cpu).as_nanos() as f64;
    let sample = Sample {
        messages_per_second: messages as f64 / seconds,
        bytes_per_second: (messages * size as u64) as f64 / seconds,
        cpu_ns_per_message: cpu / messages.max(1) as f64,
        client_cpu_ns_per_message: client_cpu.as_nanos() as f64 / messages.max(1) as f64,
    };
    (ran, sample)
}

/// The baseline: blocking std sockets, one connection, the same frames.
///
/// # Panics
/// When a loopback socket fails.
pub fn run_blocking_ping_pong(size: usize, duration: Duration, pin: Pin) -> Sample {
    let (server_cpu, client_cpu) = pin.cpus(Mode::PingPong, 1, false);
    let _pinned = Pinned::to(client_cpu);
    let frame = encode(
        &request(1, size) as &dyn Encode,
        (size as u32 + 4096).max(1 << 16),
    )
    .expect("encodes");
    let response = encode(
        &ClientResponse {
            client_id: ClientId(1),
            seq: Seq(1),
            outcome: Outcome::Done {
                payload: vec![1; size],
            },
        },
        (size as u32 + 4096).max(1 << 16),
    )
    .expect("encodes");
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let address = listener.local_addr().expect("bound");
    let (request_bytes, response_bytes) = (frame.len(), response.len());
    let server = thread::spawn(move || {
        let _pinned = Pinned::to(server_cpu);
        let (mut stream, _) = listener.accept().expect("accepts");
        stream.set_nodelay(true).expect("nodelay");
        let (mut buffer, cpu_start) = (vec![0u8; request_bytes], thread_cpu());
        while stream.read_exact(&mut buffer).is_ok() {
            if stream.write_all(&response).is_err() {
                break;
            }
        }
        thread_cpu().saturating_sub(cpu_start)
    });
    let mut stream = TcpStream::connect(address).expect("connects");
    stream.set_nodelay(true).expect("nodelay");
    let mut buffer = vec![0u8; response_bytes];
    let (started, cpu_start, mut round_trips) = (Instant::now(), thread_cpu(), 0u64);
    while started.elapsed() < duration {
        stream.write_all(&frame).expect("writes");
        stream.read_exact(&mut buffer).expect("reads");
        round_trips += 1;
    }
    let (elapsed, client_cpu) = (started.elapsed(), thread_cpu().saturating_sub(cpu_start));
    drop(stream);
    let server_cpu = server.join().expect("the server thread finishes");
    let seconds = elapsed.as_secs_f64();
    Sample {
        messages_per_second: round_trips as f64 / seconds,
        bytes_per_second: (round_trips * size as u64) as f64 / seconds,
        cpu_ns_per_message: (client_cpu + server_cpu).as_nanos() as f64 / round_trips.max(1) as f64,
        client_cpu_ns_per_message: client_cpu.as_nanos() as f64 / round_trips.max(1) as f64,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn median_sample(samples: &[Sample]) -> Sample {
    Sample {
        messages_per_second: median(samples.iter().map(|s| s.messages_per_second).collect()),
        bytes_per_second: median(samples.iter().map(|s| s.bytes_per_second).collect()),
        cpu_ns_per_message: median(samples.iter().map(|s| s.cpu_ns_per_message).collect()),
        client_cpu_ns_per_message: median(
            samples
                .iter()
                .map(|s| s.client_cpu_ns_per_message)
                .collect(),
        ),
    }
}

impl NetBench {
    /// Runs the grid `repeats` times, interleaving back ends within each
    /// cell and cells within each repeat; `progress` hears about every run.
    pub fn run(&self, mut progress: impl FnMut(&str)) -> Vec<Cell> {
        let setup = self.setup;
        let mut grid: Vec<(Mode, usize, usize, String, Vec<Sample>)> = Vec::new();
        for repeat in 0..self.repeats {
            let mut at = 0;
            for &mode in &self.modes {
                for &size in &self.sizes {
                    for &connections in &self.connections {
                        for &backend in &self.backends {
                            let (ran, sample) = run_once(mode, backend, size, connections, &setup);
                            progress(&format!("repeat {repeat}: {mode:?} {size} B x{connections} {ran}: {:.0} msg/s", sample.messages_per_second));
                            record(
                                &mut grid,
                                &mut at,
                                (mode, size, connections, ran.to_string()),
                                sample,
                            );
                        }
                        if mode == Mode::PingPong && connections == 1 {
                            let sample = run_blocking_ping_pong(size, setup.duration, setup.pin);
                            record(
                                &mut grid,
                                &mut at,
                                (mode, size, connections, "blocking".to_string()),
                                sample,
                            );
                        }
                    }
                }
            }
        }
        grid.into_iter()
            .map(|(mode, size, connections, backend, samples)| Cell {
                mode,
                size,
                connections,
                backend,
                median: median_sample(&samples),
            })
            .collect()
    }
}

fn record(
    grid: &mut Vec<(Mode, usize, usize, String, Vec<Sample>)>,
    at: &mut usize,
    key: (Mode, usize, usize, String),
    sample: Sample,
) {
    if grid.len() <= *at {
        grid.push((key.0, key.1, key.2, key.3.clone(), Vec::new()));
    }
    let entry = &mut grid[*at];
    assert!(
        entry.0 == key.0 && entry.1 == key.1 && entry.2 == key.2 && entry.3 == key.3,
        "the grid runs in the same order every repeat"
    );
    entry.4.push(sample);
    *at += 1;
}

/// The cell of `backend` for one mode, size and connection count.
fn find_cell<'a>(
    cells: &'a [Cell],
    mode: Mode,
    size: usize,
    connections: usize,
    backend: &str,
) -> Option<&'a Cell> {
    cells.iter().find(|cell| {
        cell.mode == mode
            && cell.size == size
            && cell.connections == connections
            && cell.backend == backend
    })
}

/// The cells as a markdown table, with io_uring / portable ratios.
#[must_use]
pub fn table(cells: &[Cell]) -> String {
    let mut out = String::from("| mode | size | conns | back end | msg/s | MB/s | CPU ns/msg | vs portable (msg/s, CPU) |\n|---|---|---|---|---|---|---|---|\n");
    for cell in cells {
        let portable = find_cell(cells, cell.mode, cell.size, cell.connections, "portable");
        let ratio = match portable {
            Some(portable) if cell.backend != "portable" => format!(
                "{:.2}x, {:.2}x",
                cell.median.messages_per_second / portable.median.messages_per_second,
                cell.median.cpu_ns_per_message / portable.median.cpu_ns_per_message
            ),
            _ => String::new(),
        };
        out.push_str(&format!(
            "| {:?} | {} | {} | {} | {:.0} | {:.1} | {:.0} | {} |\n",
            cell.mode,
            cell.size,
            cell.connections,
            cell.backend,
            cell.median.messages_per_second,
            cell.median.bytes_per_second / 1e6,
            cell.median.cpu_ns_per_message,
            ratio
        ));
    }
    out
}

/// The goals, read off the cells: io_uring at least as fast as
/// portable in every cell; with 64 connections at least 1.3x portable's
/// messages/s at no more than 0.8x its CPU per message; ping-pong over one
/// connection within 15 % of blocking sockets' round trips/s. One line per
/// goal, naming each cell that misses it (or meets it, for the second).
#[must_use]
pub fn goals(cells: &[Cell]) -> String {
    let find =
        |mode, size, connections, backend| find_cell(cells, mode, size, connections, backend);
    let name = |cell: &Cell| format!("{:?} {} B x{}", cell.mode, cell.size, cell.connections);
    let pairs: Vec<(&Cell, &Cell)> = cells
        .iter()
        .filter(|cell| cell.backend == "io_uring")
        .filter_map(|cell| {
            find(cell.mode, cell.size, cell.connections, "portable").map(|other| (cell, other))
        })
        .collect();
    let ratio = |(uring, portable): (&Cell, &Cell)| {
        (
            uring.median.messages_per_second / portable.median.messages_per_second.max(1e-9),
            uring.median.cpu_ns_per_message / portable.median.cpu_ns_per_message.max(1e-9),
        )
    };
    let mut out = String::new();
    let slower: Vec<String> = pairs
        .iter()
        .filter(|&&pair| ratio(pair).0 < 1.0)
        .map(|&pair| format!("{} {:.3}x", name(pair.0), ratio(pair).0))
        .collect();
    out.push_str(&format!(
        "goal: io_uring at least as fast as portable: {} of {} cells{}\n",
        pairs.len() - slower.len(),
        pairs.len(),
        if slower.is_empty() {
            String::new()
        } else {
            format!(" (not: {})", slower.join(", "))
        }
    ));
    let (mut met, mut missed) = (Vec::new(), Vec::new());
    for &pair in pairs.iter().filter(|pair| pair.0.connections == 64) {
        let (messages, cpu) = ratio(pair);
        let line = format!("{} {messages:.3}x at {cpu:.3}x CPU", name(pair.0));
        if messages >= 1.3 && cpu <= 0.8 {
            met.push(line);
        } else {
            missed.push(line);
        }
    }
    out.push_str(&format!(
        "goal: 64 connections at 1.3x portable's msg/s and at most 0.8x its CPU: met by {}; not by {}\n",
        if met.is_empty() { "none".to_string() } else { met.join(", ") },
        if missed.is_empty() { "none".to_string() } else { missed.join(", ") },
    ));
    let within: Vec<String> = cells
        .iter()
        .filter(|cell| cell.backend == "blocking")
        .filter_map(|blocking| {
            let uring = find(
                blocking.mode,
                blocking.size,
                blocking.connections,
                "io_uring",
            )?;
            let share =
                uring.median.messages_per_second / blocking.median.messages_per_second.max(1e-9);
            Some(format!(
                "{} B {share:.3}x ({})",
                blocking.size,
                if share >= 0.85 { "met" } else { "missed" }
            ))
        })
        .collect();
    out.push_str(&format!(
        "goal: io_uring ping-pong within 15 % of blocking sockets: {}\n",
        if within.is_empty() {
            "not measured".to_string()
        } else {
            within.join(", ")
        }
    ));
    out
}

/// Measures where `SEND_ZC` starts to pay: single-connection ping-pong on
/// io_uring (one message per send) with zero copy for every send against
/// none, per size, interleaved repeats; returns a markdown table of medians.
pub fn zero_copy_sweep(
    sizes: &[usize],
    repeats: usize,
    duration: Duration,
    mut progress: impl FnMut(&str),
) -> String {
    let mut samples: Vec<[Vec<Sample>; 2]> =
        sizes.iter().map(|_| [Vec::new(), Vec::new()]).collect();
    for repeat in 0..repeats {
        for (at, &size) in sizes.iter().enumerate() {
            for (which, threshold) in [(0, 0usize), (1, usize::MAX)] {
                let setup = Setup {
                    send_zero_copy_bytes_min: Some(threshold),
                    ..Setup::lasting(duration)
                };
                let (_, sample) = run_once(Mode::PingPong, BackendChoice::IoUring, size, 1, &setup);
                progress(&format!(
                    "repeat {repeat}: {size} B zero copy {}: {:.0} msg/s",
                    which == 0,
                    sample.messages_per_second
                ));
                samples[at][which].push(sample);
            }
        }
    }
    let mut out = String::from("| size | SEND_ZC msg/s | send msg/s | SEND_ZC CPU ns/msg | send CPU ns/msg |\n|---|---|---|---|---|\n");
    for (at, &size) in sizes.iter().enumerate() {
        let (zero_copy, copy) = (
            median_sample(&samples[at][0]),
            median_sample(&samples[at][1]),
        );
        out.push_str(&format!(
            "| {size} | {:.0} | {:.0} | {:.0} | {:.0} |\n",
            zero_copy.messages_per_second,
            copy.messages_per_second,
            zero_copy.cpu_ns_per_message,
            copy.cpu_ns_per_message
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_grid_runs_on_both_back_ends_and_names_them() {
        let bench = NetBench {
            sizes: vec![64, 20_000],
            connections: vec![1, 2],
            repeats: 1,
            setup: Setup::lasting(Duration::from_millis(60)),
            ..NetBench::default()
        };
        let cells = bench.run(|_| {});
        let names: Vec<&str> = cells.iter().map(|cell| cell.backend.as_str()).collect();
        for name in ["portable", "blocking"] {
            assert!(names.contains(&name), "{name} ran: {names:?}");
        }
        if transport::uring::available() {
            assert!(names.contains(&"io_uring"), "io_uring ran: {names:?}");
        }
        assert!(
            cells
                .iter()
                .all(|cell| cell.median.messages_per_second > 0.0),
            "{}",
            table(&cells)
        );
    }

    fn cell(
        mode: Mode,
        size: usize,
        connections: usize,
        backend: &str,
        rate: f64,
        cpu: f64,
    ) -> Cell {
        Cell {
            mode,
            size,
            connections,
            backend: backend.to_string(),
            median: Sample {
                messages_per_second: rate,
                bytes_per_second: rate * size as f64,
                cpu_ns_per_message: cpu,
                client_cpu_ns_per_message: cpu / 2.0,
            },
        }
    }

    #[test]
    fn the_goals_are_read_off_the_cells() {
        let cells = [
            cell(Mode::PingPong, 64, 1, "io_uring", 60_000.0, 16_000.0),
            cell(Mode::PingPong, 64, 1, "portable", 55_000.0, 18_000.0),
            cell(Mode::PingPong, 64, 1, "blocking", 70_000.0, 14_000.0),
            cell(Mode::PingPong, 64, 64, "io_uring", 200_000.0, 9_000.0),
            cell(Mode::PingPong, 64, 64, "portable", 150_000.0, 12_000.0),
            cell(Mode::Streaming, 64, 64, "io_uring", 9.0e6, 180.0),
            cell(Mode::Streaming, 64, 64, "portable", 10.0e6, 170.0),
        ];
        let text = goals(&cells);
        assert!(
            text.contains(
                "at least as fast as portable: 2 of 3 cells (not: Streaming 64 B x64 0.900x)"
            ),
            "{text}"
        );
        assert!(
            text.contains("met by PingPong 64 B x64 1.333x at 0.750x CPU; not by Streaming 64 B x64 0.900x at 1.059x CPU"),
            "{text}"
        );
        assert!(
            text.contains("within 15 % of blocking sockets: 64 B 0.857x (met)"),
            "{text}"
        );
    }
}

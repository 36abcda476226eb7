//! One benchmark cell, for profiling:
//! `net_one MODE(ping|stream) BACKEND(uring|portable|blocking) SIZE CONNS DURATION_MS [ZC]`,
//! with `SYNOD_NET_PIN=auto|shared|split|free` to place the two threads
//! (auto by default, as `synod bench net`) and `SYNOD_NET_BUSY_POLL_US=N`
//! to have both transports busy-poll.

use std::time::Duration;

use synod_bench::net::{run_blocking_ping_pong, run_once, Mode, Pin, Setup};
use synod_net::transport::BackendChoice;

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let argument = |at: usize, default: &str| {
        arguments
            .get(at)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    };
    let mode = if argument(0, "ping") == "ping" {
        Mode::PingPong
    } else {
        Mode::Streaming
    };
    let size: usize = argument(2, "64").parse().expect("a size");
    let connections: usize = argument(3, "1").parse().expect("a connection count");
    let duration = Duration::from_millis(argument(4, "2000").parse().expect("a duration"));
    let zero_copy = arguments.get(5).and_then(|text| text.parse().ok());
    let pin = match std::env::var("SYNOD_NET_PIN").as_deref() {
        Ok("shared") => Pin::Shared,
        Ok("split") => Pin::Split,
        Ok("free") => Pin::Free,
        _ => Pin::Auto,
    };
    let setup = Setup {
        duration,
        send_zero_copy_bytes_min: zero_copy,
        pin,
        busy_poll_us: std::env::var("SYNOD_NET_BUSY_POLL_US")
            .ok()
            .and_then(|text| text.parse().ok())
            .unwrap_or(0),
    };
    let sample = match argument(1, "uring").as_str() {
        "blocking" => run_blocking_ping_pong(size, duration, pin),
        "portable" => run_once(mode, BackendChoice::Portable, size, connections, &setup).1,
        _ => run_once(mode, BackendChoice::IoUring, size, connections, &setup).1,
    };
    println!("{sample:?}");
}

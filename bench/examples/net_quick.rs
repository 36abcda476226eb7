//! A quick run of the net benchmark (the full one is `synod bench net`):
//! `cargo run --release -p synod-bench --example net_quick -- REPEATS DURATION_MS [SIZES] [CONNS] [ZC]`.

use std::time::Duration;

use synod_bench::net::{table, NetBench, Setup};

fn list(argument: Option<String>, default: Vec<usize>) -> Vec<usize> {
    argument.map_or(default, |text| {
        text.split(',')
            .filter_map(|item| item.parse().ok())
            .collect()
    })
}

fn main() {
    let mut arguments = std::env::args().skip(1);
    let repeats = arguments
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1);
    let duration_ms = arguments
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(300);
    let defaults = NetBench::default();
    let sizes = list(arguments.next(), defaults.sizes.clone());
    let connections = list(arguments.next(), defaults.connections.clone());
    let setup = Setup {
        send_zero_copy_bytes_min: arguments.next().and_then(|text| text.parse().ok()),
        ..Setup::lasting(Duration::from_millis(duration_ms))
    };
    let bench = NetBench {
        repeats,
        sizes,
        connections,
        setup,
        ..defaults
    };
    let cells = bench.run(|line| eprintln!("{line}"));
    println!("{}", table(&cells));
}

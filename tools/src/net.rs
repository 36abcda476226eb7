//! `synod bench net`: the transports alone, io_uring beside the portable
//! back end and a blocking-socket baseline, in one run.

use std::time::Duration;

use clap::{Args, ValueEnum};
use synod_bench::net::{goals, table, zero_copy_sweep, Mode, NetBench, Pin, Setup};
use synod_net::transport::BackendChoice;

use crate::machine::Machine;
use crate::print_out;

/// A benchmark mode.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum ModeArg {
    PingPong,
    Streaming,
}

/// The transport benchmark's settings, as given on the command line.
#[derive(Args, Debug)]
pub(crate) struct NetArgs {
    /// Repeats of the whole grid (interleaved); the table shows medians.
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// How long each run measures, in milliseconds.
    #[arg(long, default_value_t = 500)]
    duration_ms: u64,
    /// Payload sizes in bytes.
    #[arg(long, value_delimiter = ',', default_values_t = [64usize, 1024, 65536])]
    sizes: Vec<usize>,
    /// Connection counts.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 2, 64])]
    connections: Vec<usize>,
    /// Modes to run.
    #[arg(long, value_delimiter = ',', value_enum, default_values_t = [ModeArg::PingPong, ModeArg::Streaming])]
    modes: Vec<ModeArg>,
    /// Instead of the grid: measure SEND_ZC against a copying send per size.
    #[arg(long)]
    zero_copy_sweep: bool,
    /// Where each run's server and client threads run: auto (ping-pong
    /// over one or two connections on one CPU, everything else on two),
    /// shared (both on one CPU), split (one CPU each), free (wherever the
    /// scheduler puts them).
    #[arg(long, value_enum, default_value_t = PinArg::Auto)]
    pin: PinArg,
    /// Have both transports poll this many microseconds before they sleep
    /// (`busy_poll_us`; for threads with a CPU each, which `auto` then
    /// gives every run). 0 (the default): they sleep when idle.
    #[arg(long, default_value_t = 0)]
    busy_poll_us: u32,
}

/// Thread placement for the benchmark.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum PinArg {
    Auto,
    Shared,
    Split,
    Free,
}

/// Runs the transport benchmark and prints its table.
///
/// # Errors
/// When standard output cannot be written.
pub(crate) fn bench(arguments: &NetArgs) -> anyhow::Result<()> {
    let duration = Duration::from_millis(arguments.duration_ms);
    let progress = |line: &str| eprintln!("{line}");
    if arguments.zero_copy_sweep {
        let sweep = zero_copy_sweep(&arguments.sizes, arguments.repeats, duration, progress);
        return print_out(format_args!("{}\n{sweep}\n", Machine::probe()));
    }
    let bench = NetBench {
        sizes: arguments.sizes.clone(),
        connections: arguments.connections.clone(),
        modes: arguments
            .modes
            .iter()
            .map(|mode| match mode {
                ModeArg::PingPong => Mode::PingPong,
                ModeArg::Streaming => Mode::Streaming,
            })
            .collect(),
        backends: vec![BackendChoice::IoUring, BackendChoice::Portable],
        repeats: arguments.repeats,
        setup: Setup {
            pin: match arguments.pin {
                PinArg::Auto => Pin::Auto,
                PinArg::Free => Pin::Free,
                PinArg::Shared => Pin::Shared,
                PinArg::Split => Pin::Split,
            },
            busy_poll_us: arguments.busy_poll_us,
            ..Setup::lasting(duration)
        },
    };
    let cells = bench.run(progress);
    let polling = if arguments.busy_poll_us > 0 {
        format!(
            "transports busy-poll {} µs before they sleep; blocking sockets do not\n",
            arguments.busy_poll_us
        )
    } else {
        String::new()
    };
    print_out(format_args!(
        "{}\n{}\n{polling}{}",
        Machine::probe(),
        table(&cells),
        goals(&cells)
    ))
}

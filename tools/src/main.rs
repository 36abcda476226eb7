//! The synod command.

use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use synod_bench::net::{table, zero_copy_sweep, Mode, NetBench};
use synod_net::transport::BackendChoice;

/// synod: a Multi-Paxos engine, its tools and its benchmarks.
#[derive(Parser)]
#[command(name = "synod", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Load generators and benchmarks: `synod bench [kv|lock|stream|log|net]`.
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    #[command(subcommand)]
    workload: Option<Workload>,
}

#[derive(Subcommand)]
enum Workload {
    /// The transports alone: ping-pong and streaming over loopback, io_uring
    /// against the portable back end (and a blocking-socket baseline).
    Net(NetArgs),
}

#[derive(Clone, Copy, ValueEnum)]
enum ModeArg {
    PingPong,
    Streaming,
}

#[derive(Args)]
struct NetArgs {
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
}

fn bench_net(arguments: &NetArgs) {
    let duration = Duration::from_millis(arguments.duration_ms);
    let progress = |line: &str| eprintln!("{line}");
    if arguments.zero_copy_sweep {
        println!(
            "{}",
            zero_copy_sweep(&arguments.sizes, arguments.repeats, duration, progress)
        );
        return;
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
        duration,
        send_zero_copy_bytes_min: None,
    };
    let cells = bench.run(progress);
    println!("{}", table(&cells));
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Bench(BenchArgs {
            workload: Some(Workload::Net(arguments)),
        }) => bench_net(&arguments),
        Command::Bench(BenchArgs { workload: None }) => {
            bail!("synod bench kv is not built yet; try `synod bench net`")
        }
    }
    Ok(())
}

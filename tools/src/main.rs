//! The synod command: history checking, log tools and load generators.

mod check;
mod log;
mod machine;
mod net;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use synod_engine::check::CheckBudget;

/// The synod Multi-Paxos engine's command-line tool.
#[derive(Parser, Debug)]
#[command(name = "synod", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Check a history file (JSON lines) for linearizability.
    ///
    /// Exits 0 when linearizable, 1 when not, 2 when the step budget ran
    /// out or the file cannot be read or parsed.
    Check {
        /// The history: one JSON object per line.
        file: PathBuf,
        /// Search steps allowed per key before giving up with "unknown".
        #[arg(long, default_value_t = CheckBudget::STEPS_MAX_DEFAULT)]
        steps_max: u64,
    },
    /// Write-ahead log tools.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Load generators and benchmarks.
    Bench {
        #[command(subcommand)]
        workload: BenchWorkload,
    },
}

#[derive(Subcommand, Debug)]
enum LogCommand {
    /// Lists segments, slot ranges, record counts, checksum status, the
    /// metadata and the snapshot of a log directory (reads only).
    Inspect {
        /// The log directory.
        dir: PathBuf,
        /// Also list every record.
        #[arg(long)]
        records: bool,
    },
}

#[derive(Subcommand, Debug)]
enum BenchWorkload {
    /// Durable appends/s and MB/s of the write-ahead log, both back ends in
    /// both sync modes, beside bare O_DIRECT and buffered baselines on the
    /// same disk, in one run.
    Log(log::BenchLogArgs),
    /// The transports alone: ping-pong and streaming over loopback, io_uring
    /// against the portable back end (and a blocking-socket baseline).
    Net(net::NetArgs),
}

/// Writes to standard output and flushes. Unlike `print!`, which panics, a
/// failed write (a closed pipe, a full disk) comes back as an error.
pub(crate) fn print_out(text: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(text)
        .and_then(|()| stdout.flush())
        .context("writing to standard output")
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { file, steps_max } => check::check(&file, steps_max),
        Command::Log {
            command: LogCommand::Inspect { dir, records },
        } => log::inspect(&dir, records),
        Command::Bench { workload } => match workload {
            BenchWorkload::Log(arguments) => log::bench(arguments),
            BenchWorkload::Net(arguments) => net::bench(&arguments).map(|()| ExitCode::SUCCESS),
        },
    };
    result.unwrap_or_else(|error| {
        eprintln!("synod: {error:#}");
        ExitCode::from(check::EXIT_UNDECIDED)
    })
}

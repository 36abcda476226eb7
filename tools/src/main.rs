//! The synod command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// synod: a Multi-Paxos engine, its tools and its load generators.
#[derive(Parser)]
#[command(name = "synod", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write-ahead log tools.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Load generators and benchmarks.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

#[derive(Subcommand)]
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

#[derive(Subcommand)]
enum BenchCommand {
    /// Durable appends/s and MB/s of the write-ahead log, both back ends in
    /// both sync modes, beside bare O_DIRECT and buffered baselines on the
    /// same disk, in one run.
    Log {
        /// Seconds per slice: the subjects of a cell take turns in slices.
        #[arg(long, default_value_t = 0.2)]
        seconds: f64,
        /// Where the temporary files go: a directory on the disk to measure.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Slices per subject and cell; medians are reported.
        #[arg(long, default_value_t = 9)]
        repeats: usize,
        /// Record (batch) sizes in bytes.
        #[arg(long, value_delimiter = ',', default_values_t = [64usize, 1024, 65536])]
        record_bytes: Vec<usize>,
        /// Records per group commit.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 16, 256])]
        per_group: Vec<usize>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("synod: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Log {
            command: LogCommand::Inspect { dir, records },
        } => {
            let listing = if records {
                synod_log::inspect::Listing::Records
            } else {
                synod_log::inspect::Listing::Summary
            };
            let report = synod_log::inspect::inspect(&dir, listing)
                .with_context(|| format!("inspecting {}", dir.display()))?;
            print!("{report}");
            Ok(if report.damaged {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Bench {
            command:
                BenchCommand::Log {
                    seconds,
                    dir,
                    repeats,
                    record_bytes,
                    per_group,
                },
        } => {
            let config = synod_log::bench::BenchConfig {
                directory: dir.unwrap_or_else(std::env::temp_dir),
                seconds_per_cell: seconds,
                repeats: repeats.max(1),
                record_sizes: record_bytes,
                records_per_group: per_group,
            };
            let report = synod_log::bench::run(&config).context("running the log benchmark")?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

//! `synod log inspect DIR` and `synod bench log`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;

use crate::machine::Machine;
use crate::print_out;

/// Lists a log directory; exit status 2 when it is damaged.
pub(crate) fn inspect(dir: &Path, records: bool) -> anyhow::Result<ExitCode> {
    let listing = if records {
        synod_log::inspect::Listing::Records
    } else {
        synod_log::inspect::Listing::Summary
    };
    let report = synod_log::inspect::inspect(dir, listing)
        .with_context(|| format!("inspecting {}", dir.display()))?;
    print_out(format_args!("{report}"))?;
    Ok(if report.damaged {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

/// The log benchmark's settings, as given on the command line.
#[derive(clap::Args, Debug)]
pub(crate) struct BenchLogArgs {
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
}

/// Runs the log benchmark and prints its table.
pub(crate) fn bench(arguments: BenchLogArgs) -> anyhow::Result<ExitCode> {
    let config = synod_log::bench::BenchConfig {
        directory: arguments.dir.unwrap_or_else(std::env::temp_dir),
        seconds_per_cell: arguments.seconds,
        repeats: arguments.repeats.max(1),
        record_sizes: arguments.record_bytes,
        records_per_group: arguments.per_group,
    };
    let report = synod_log::bench::run(&config).context("running the log benchmark")?;
    print_out(format_args!(
        "{}\n{report}{}",
        Machine::probe(),
        synod_log::bench::goals(&report)
    ))?;
    Ok(ExitCode::SUCCESS)
}

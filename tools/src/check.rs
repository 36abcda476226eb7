//! `synod check FILE`: checks a client history (JSON lines, see
//! `synod_engine::check`) for linearizability. Exit status: 0 linearizable,
//! 1 not linearizable, 2 undecided (budget exhausted) or unreadable input.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use synod_engine::check::{check_history, read_history, CheckBudget, Verdict};

use crate::print_out;

/// Exit status for a history that is not linearizable.
const EXIT_NOT_LINEARIZABLE: u8 = 1;
/// Exit status for an undecided check or an unreadable history.
pub(crate) const EXIT_UNDECIDED: u8 = 2;

/// Runs `synod check` and prints its summary.
pub(crate) fn check(path: &Path, steps_max: u64) -> anyhow::Result<ExitCode> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let operations = read_history(BufReader::new(file))
        .with_context(|| format!("cannot parse {}", path.display()))?;
    let key_count = operations
        .iter()
        .map(|operation| operation.key.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    print_out(format_args!(
        "history: {} operations on {} keys\n",
        operations.len(),
        key_count
    ))?;

    let budget = CheckBudget {
        steps_max,
        ..CheckBudget::default()
    };
    let report = check_history(&operations, budget).context("invalid history")?;
    print_out(format_args!(
        "checked: {} keys, {} operations, {} search steps\n",
        report.keys_checked, report.operations_checked, report.steps
    ))?;
    Ok(match report.verdict {
        Verdict::Linearizable => {
            print_out(format_args!("verdict: linearizable\n"))?;
            ExitCode::SUCCESS
        }
        Verdict::NotLinearizable { key, detail } => {
            print_out(format_args!(
                "verdict: NOT linearizable at key {key:?}\n{detail}\n"
            ))?;
            ExitCode::from(EXIT_NOT_LINEARIZABLE)
        }
        Verdict::Unknown { key, detail } => {
            print_out(format_args!(
                "verdict: unknown: gave up on key {key:?} (raise --steps-max to search longer)\n{detail}\n"
            ))?;
            ExitCode::from(EXIT_UNDECIDED)
        }
    })
}

//! Each deliberate bug must be caught: by a scripted fault schedule aimed
//! at it (which passes with the bug switched off), and by random seeds
//! known to catch it. `simulate --bug NAME --seeds N` measures how many
//! random seeds it takes.

use synod_engine::sim::{self, SimConfig, ViolationKind};
use synod_tests::{aimed_config, describe_failure, Bug};

/// Random seeds (default configuration, all faults) that caught each bug
/// when it was measured.
fn known_seeds(bug: Bug) -> &'static [u64] {
    match bug {
        Bug::IgnorePromisedValues => &[1, 2, 3],
        Bug::ReplyBeforePersist => &[118, 128, 202],
        Bug::SkipLeaseWait => &[],
        Bug::ApplyRetryTwice => &[],
    }
}

fn with_bug(mut config: SimConfig, bug: Bug) -> SimConfig {
    bug.switch_on(&mut config);
    config
}

fn kinds(report: &sim::SimReport) -> Vec<ViolationKind> {
    report
        .violations
        .iter()
        .map(|violation| violation.kind)
        .collect()
}

fn aimed_schedule_catches(bug: Bug) {
    let clean = sim::run(&aimed_config(bug, 1));
    assert!(
        clean.passed(),
        "{}: the aimed schedule breaks a check without the bug:\n{}",
        bug.name(),
        describe_failure(&clean, 40)
    );
    let caught = sim::run(&with_bug(aimed_config(bug, 1), bug));
    assert!(
        !caught.passed(),
        "{}: the aimed schedule does not catch the bug",
        bug.name()
    );
    eprintln!(
        "{} caught by its schedule: {:?}",
        bug.name(),
        kinds(&caught)
    );
}

fn known_seeds_catch(bug: Bug) {
    for &seed in known_seeds(bug) {
        let config = with_bug(
            SimConfig {
                seed,
                ..SimConfig::default()
            },
            bug,
        );
        let report = sim::run(&config);
        assert!(
            !report.passed(),
            "{}: seed {seed} no longer catches the bug",
            bug.name()
        );
    }
}

#[test]
fn ignoring_promised_values_is_caught() {
    aimed_schedule_catches(Bug::IgnorePromisedValues);
    known_seeds_catch(Bug::IgnorePromisedValues);
}

#[test]
fn replying_before_persisting_is_caught() {
    aimed_schedule_catches(Bug::ReplyBeforePersist);
    known_seeds_catch(Bug::ReplyBeforePersist);
}

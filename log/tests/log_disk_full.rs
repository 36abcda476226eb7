//! Disk full and read-only, for real: a small ext4 file system on a loop
//! device. Needs root (CI runs as root); says it was skipped otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;

use synod_log::{FileStorage, Log, LogConfig, LogError, SyncMode};
use synod_net::wire::{AcceptedEntry, Ballot, Batch, NodeId, Slot};

/// A loop-mounted ext4 image; unmounted and removed on drop, even when the
/// test fails.
struct LoopMount {
    image: PathBuf,
    mount_point: PathBuf,
    mounted: bool,
}

impl LoopMount {
    fn create(size_bytes: u64) -> Result<LoopMount, String> {
        let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        let image = base.join(format!("synod-log-enospc-{}.img", std::process::id()));
        let mount_point = base.join(format!("synod-log-enospc-{}", std::process::id()));
        let mut mount = LoopMount {
            image,
            mount_point,
            mounted: false,
        };
        std::fs::create_dir_all(&mount.mount_point).map_err(|e| e.to_string())?;
        let file = std::fs::File::create(&mount.image).map_err(|e| e.to_string())?;
        file.set_len(size_bytes).map_err(|e| e.to_string())?;
        run(
            "mkfs.ext4",
            &["-q", "-F", "-m", "0", path_str(&mount.image)],
        )?;
        run(
            "mount",
            &[
                "-o",
                "loop",
                path_str(&mount.image),
                path_str(&mount.mount_point),
            ],
        )?;
        mount.mounted = true;
        Ok(mount)
    }

    fn remount_read_only(&self) -> Result<(), String> {
        run("mount", &["-o", "remount,ro", path_str(&self.mount_point)])
    }
}

impl Drop for LoopMount {
    fn drop(&mut self) {
        if self.mounted && run("umount", &[path_str(&self.mount_point)]).is_err() {
            let _ = run("umount", &["-l", path_str(&self.mount_point)]);
        }
        let _ = std::fs::remove_dir(&self.mount_point);
        let _ = std::fs::remove_file(&self.image);
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn run(program: &str, arguments: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(arguments)
        .output()
        .map_err(|error| format!("{program}: {error}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {arguments:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

fn entry(slot: u64) -> AcceptedEntry {
    AcceptedEntry {
        slot: Slot(slot),
        ballot: Ballot {
            round: 3,
            node: NodeId(1),
        },
        batch: Batch::copy_from_slice(&vec![(slot % 251) as u8; 30_000]),
    }
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1 << 20,
        group_bytes_max: 128 * 1024,
        ..LogConfig::default()
    }
}

#[test]
fn disk_full_keeps_the_durable_prefix_and_resumes_when_space_returns() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIPPED: the disk-full test needs root to loop-mount ext4");
        return;
    }
    let mount = match LoopMount::create(24 << 20) {
        Ok(mount) => mount,
        Err(reason) => {
            println!("SKIPPED: cannot loop-mount ext4 here: {reason}");
            return;
        }
    };
    let directory = mount.mount_point.join("log");
    std::fs::create_dir_all(&directory).expect("log directory");
    let filler = mount.mount_point.join("filler");
    std::fs::write(&filler, vec![1u8; 6 << 20]).expect("filler");

    let storage = FileStorage::open(&directory, SyncMode::Fdatasync).expect("open");
    let (mut log, _) = Log::open(storage, config()).expect("recover");
    let mut durable_slots = 0u64;
    let mut slot = 1u64;
    let full = loop {
        assert!(slot < 10_000, "the disk never filled");
        log.append(&entry(slot))
            .expect("appends are accepted until a commit finds the disk full");
        match log.commit() {
            Ok(_) => durable_slots = slot,
            Err(error) => break error,
        }
        slot += 1;
    };
    assert!(full.is_disk_full(), "{full}");
    assert!(durable_slots > 20, "some segments fit: {durable_slots}");
    let refused = log
        .append(&entry(slot + 1))
        .expect_err("appends are refused while full");
    assert!(matches!(refused, LogError::DiskFull { .. }), "{refused}");
    println!("disk full after {durable_slots} durable entries: {full}");

    // Space returns: the pending group goes out and appends resume.
    std::fs::remove_file(&filler).expect("freeing space");
    assert!(log.commit().expect("commit after space returned").is_some());
    for next in slot + 1..slot + 40 {
        log.append(&entry(next)).expect("appends resume");
        log.commit().expect("commits resume");
    }
    drop(log);

    let storage = FileStorage::open(&directory, SyncMode::Fdatasync).expect("reopen");
    let (log, recovered) = Log::open(storage, config()).expect("recover after disk full");
    assert!(!recovered.damaged, "{}", recovered.report);
    assert_eq!(recovered.accepted.len() as u64, slot + 39);
    for (index, accepted) in recovered.accepted.iter().enumerate() {
        assert_eq!(accepted, &entry(index as u64 + 1));
    }
    drop(log);

    mount.remount_read_only().expect("remount read-only");
    let error = FileStorage::open(&directory, SyncMode::Fdatasync)
        .err()
        .expect("read-only");
    assert!(matches!(error, LogError::ReadOnly { .. }), "{error}");
    println!("read-only: {error}");
}

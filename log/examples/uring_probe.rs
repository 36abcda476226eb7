//! Where a durable io_uring write spends its time: a closed loop of
//! same-size `O_DIRECT` overwrites of a zero-filled file, each made durable
//! before the next, through several ways of issuing it, taking turns in
//! short slices (medians of the slices' medians).
//!
//! `cargo run --release -p synod-log --example uring_probe -- DIR [BYTES...]`

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use io_uring::{opcode, squeue, types, IoUring};
use synod_log::AlignedBuf;

const FILE_BYTES: u64 = 256 << 20;

#[derive(Clone, Copy, Debug)]
enum Way {
    /// `pwrite` + `fdatasync`.
    SyncFdatasync,
    /// `pwrite` + `fdatasync`, each write starting one block before the
    /// previous one ended (a recycled segment's zero block after a group
    /// is overwritten by the next group).
    SyncFdatasyncOverlap,
    /// `pwrite` + `fdatasync` of a buffer rewritten by the CPU just before
    /// each write (untimed), as the log's group buffer is.
    SyncFdatasyncRewritten,
    /// `pwrite` on an `O_DSYNC` descriptor.
    SyncDsyncFile,
    /// `pwritev2(RWF_DSYNC)`.
    SyncRwfDsync,
    /// WRITE_FIXED linked to FSYNC(DATASYNC), one `submit_and_wait(2)`.
    RingLinked,
    /// The same, the io-wq workers bound to the submitting CPU.
    RingLinkedAffine,
    /// The same on a ring without DEFER_TASKRUN / SINGLE_ISSUER.
    RingLinkedPlainRing,
    /// Linked, the thread and the io-wq workers pinned to one CPU.
    RingLinkedPinned,
    /// Linked, at most one io-wq worker per kind.
    RingLinkedOneWorker,
    /// WRITE_FIXED, wait; then FSYNC, wait (two round trips).
    RingWriteThenSync,
    /// WRITE (not fixed) linked to FSYNC.
    RingLinkedUnfixed,
    /// One WRITE_FIXED with `RWF_DSYNC`.
    RingRwfDsync,
    /// One WRITE_FIXED on an `O_DSYNC` descriptor.
    RingDsyncFile,
    /// WRITE_FIXED with IOSQE_ASYNC (forced to io-wq) linked to FSYNC.
    RingLinkedForceAsync,
}

const WAYS: [Way; 15] = [
    Way::SyncFdatasyncRewritten,
    Way::SyncFdatasyncOverlap,
    Way::RingLinkedPinned,
    Way::RingLinkedOneWorker,
    Way::SyncFdatasync,
    Way::SyncDsyncFile,
    Way::SyncRwfDsync,
    Way::RingLinked,
    Way::RingLinkedAffine,
    Way::RingLinkedPlainRing,
    Way::RingWriteThenSync,
    Way::RingLinkedUnfixed,
    Way::RingRwfDsync,
    Way::RingDsyncFile,
    Way::RingLinkedForceAsync,
];

struct Subject {
    way: Way,
    file: File,
    ring: Option<IoUring>,
    buffer: AlignedBuf,
    offset: u64,
    medians_us: Vec<f64>,
    rates: Vec<f64>,
    write_us: Vec<f64>,
    last_write: Option<Duration>,
    overlap_bytes: u64,
}

fn zero_file(path: &Path) {
    let mut file = File::create(path).expect("create");
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..FILE_BYTES >> 20 {
        file.write_all(&zeros).expect("zero-fill");
    }
    file.sync_all().expect("sync");
    // SAFETY: advice on a descriptor we own.
    unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
}

fn open(path: &Path, dsync: bool) -> File {
    let mut flags = libc::O_DIRECT;
    if dsync {
        flags |= libc::O_DSYNC;
    }
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(flags)
        .open(path)
        .expect("open")
}

impl Subject {
    fn new(way: Way, path: &Path, bytes: usize) -> Subject {
        zero_file(path);
        let dsync = matches!(way, Way::SyncDsyncFile | Way::RingDsyncFile);
        let file = open(path, dsync);
        let mut buffer = AlignedBuf::zeroed(bytes);
        buffer.as_mut_slice().fill(0x5a);
        let ring = match way {
            Way::SyncFdatasync | Way::SyncDsyncFile | Way::SyncRwfDsync => None,
            Way::RingLinkedPlainRing => Some(IoUring::new(8).expect("ring")),
            _ => Some(
                IoUring::builder()
                    .setup_single_issuer()
                    .setup_defer_taskrun()
                    .build(8)
                    .expect("ring"),
            ),
        };
        if let Some(ring) = &ring {
            let iovec = [buffer.iovec()];
            // SAFETY: the buffer outlives the ring (dropped in field order
            // below: ring before buffer) and never moves.
            unsafe { ring.submitter().register_buffers(&iovec) }.expect("register buffers");
            ring.submitter()
                .register_files(&[file.as_raw_fd()])
                .expect("register files");
            if matches!(way, Way::RingLinkedOneWorker) {
                let mut max = [1u32, 1u32];
                ring.submitter()
                    .register_iowq_max_workers(&mut max)
                    .expect("max workers");
            }
            if matches!(way, Way::RingLinkedPinned) {
                // SAFETY: an all-zero cpu_set_t is a valid empty set.
                let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
                // SAFETY: CPU 0 exists.
                unsafe { libc::CPU_SET(0, &mut set) };
                ring.submitter().register_iowq_aff(&set).expect("iowq aff");
            }
            if matches!(way, Way::RingLinkedAffine) {
                // SAFETY: sched_getcpu has no preconditions.
                let cpu = unsafe { libc::sched_getcpu() } as usize;
                // SAFETY: an all-zero cpu_set_t is a valid empty set.
                let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
                // SAFETY: cpu is below CPU_SETSIZE on this machine.
                unsafe { libc::CPU_SET(cpu, &mut set) };
                ring.submitter().register_iowq_aff(&set).expect("iowq aff");
            }
        }
        Subject {
            way,
            file,
            ring,
            buffer,
            offset: 0,
            medians_us: Vec::new(),
            rates: Vec::new(),
            write_us: Vec::new(),
            last_write: None,
            overlap_bytes: if matches!(way, Way::SyncFdatasyncOverlap) {
                4096
            } else {
                0
            },
        }
    }

    fn one(&mut self) -> Option<Duration> {
        let length = self.buffer.len();
        if self.offset + length as u64 > FILE_BYTES {
            self.offset = 0;
        }
        let offset = self.offset;
        self.offset += length as u64 - self.overlap_bytes;
        if matches!(self.way, Way::SyncFdatasyncRewritten) {
            let fill = (offset / length as u64) as u8;
            self.buffer.as_mut_slice().fill(fill);
        }
        let fixed = types::Fixed(0);
        let write = || {
            opcode::WriteFixed::new(fixed, self.buffer.as_ptr(), length as u32, 0)
                .offset(offset)
                .build()
                .user_data(1)
        };
        let sync = || {
            opcode::Fsync::new(fixed)
                .flags(types::FsyncFlags::DATASYNC)
                .build()
                .user_data(2)
        };
        let mut write_done = None;
        let started = Instant::now();
        match self.way {
            Way::SyncFdatasync | Way::SyncFdatasyncOverlap | Way::SyncFdatasyncRewritten => {
                self.file
                    .write_all_at(self.buffer.as_slice(), offset)
                    .expect("write");
                self.file.sync_data().expect("sync");
            }
            Way::SyncDsyncFile => {
                self.file
                    .write_all_at(self.buffer.as_slice(), offset)
                    .expect("write");
            }
            Way::SyncRwfDsync => {
                let iovec = libc::iovec {
                    iov_base: self.buffer.as_ptr() as *mut libc::c_void,
                    iov_len: length,
                };
                // SAFETY: the iovec points at a live buffer of `length` bytes.
                let written = unsafe {
                    libc::pwritev2(
                        self.file.as_raw_fd(),
                        &iovec,
                        1,
                        offset as libc::off_t,
                        libc::RWF_DSYNC,
                    )
                };
                assert_eq!(written, length as isize);
            }
            Way::RingLinked
            | Way::RingLinkedPinned
            | Way::RingLinkedOneWorker
            | Way::RingLinkedAffine
            | Way::RingLinkedPlainRing
            | Way::RingLinkedUnfixed
            | Way::RingLinkedForceAsync => {
                let ring = self.ring.as_mut().expect("ring");
                let first = match self.way {
                    Way::RingLinkedUnfixed => {
                        opcode::Write::new(fixed, self.buffer.as_ptr(), length as u32)
                            .offset(offset)
                            .build()
                            .user_data(1)
                    }
                    Way::RingLinkedForceAsync => write().flags(squeue::Flags::ASYNC),
                    _ => write(),
                }
                .flags(squeue::Flags::IO_LINK);
                // SAFETY: the buffer is registered and lives until the completion is reaped below.
                unsafe {
                    let mut queue = ring.submission();
                    queue.push(&first).expect("room");
                    queue.push(&sync()).expect("room");
                }
                ring.submit_and_wait(2).expect("submit");
                let mut seen = 0;
                for entry in ring.completion() {
                    assert!(entry.result() >= 0, "{:?} {}", self.way, entry.result());
                    seen += 1;
                }
                assert_eq!(seen, 2);
            }
            Way::RingWriteThenSync => {
                let ring = self.ring.as_mut().expect("ring");
                // SAFETY: as above.
                unsafe { ring.submission().push(&write()).expect("room") };
                ring.submit_and_wait(1).expect("submit");
                assert!(ring.completion().next().expect("cqe").result() >= 0);
                write_done = Some(started.elapsed());
                // SAFETY: fsync takes no buffer.
                unsafe { ring.submission().push(&sync()).expect("room") };
                ring.submit_and_wait(1).expect("submit");
                assert!(ring.completion().next().expect("cqe").result() >= 0);
            }
            Way::RingRwfDsync | Way::RingDsyncFile => {
                let ring = self.ring.as_mut().expect("ring");
                let flags = if matches!(self.way, Way::RingRwfDsync) {
                    libc::RWF_DSYNC
                } else {
                    0
                };
                let entry = opcode::WriteFixed::new(fixed, self.buffer.as_ptr(), length as u32, 0)
                    .offset(offset)
                    .rw_flags(flags)
                    .build()
                    .user_data(1);
                // SAFETY: as above.
                unsafe { ring.submission().push(&entry).expect("room") };
                ring.submit_and_wait(1).expect("submit");
                let result = ring.completion().next().expect("cqe").result();
                assert_eq!(result, length as i32, "{:?}", self.way);
            }
        }
        self.last_write = write_done;
        Some(started.elapsed())
    }
}

fn pin(one: bool) {
    // SAFETY: an all-zero cpu_set_t is a valid empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let cpus = if one {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    for cpu in 0..cpus {
        // SAFETY: cpu is below CPU_SETSIZE.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    // SAFETY: sets this thread's affinity to a valid set.
    unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) };
}

fn iowq_workers() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|task| task.ok())
                .filter(|task| {
                    std::fs::read_to_string(task.path().join("comm"))
                        .is_ok_and(|name| name.starts_with("iou-wrk"))
                })
                .count()
        })
        .unwrap_or(0)
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    let mut arguments = std::env::args().skip(1);
    let directory = arguments.next().expect("DIR");
    let sizes: Vec<usize> = arguments.map(|a| a.parse().expect("bytes")).collect();
    let sizes = if sizes.is_empty() {
        vec![4096, 69632]
    } else {
        sizes
    };
    let slices: usize = std::env::var("SLICES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let slice = Duration::from_secs_f64(
        std::env::var("SLICE_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0.2),
    );
    for bytes in sizes {
        let only = std::env::var("ONLY").unwrap_or_default();
        let mut subjects: Vec<Subject> = WAYS
            .iter()
            .enumerate()
            .filter(|(_, way)| {
                only.is_empty() || only.split(',').any(|name| name == format!("{way:?}"))
            })
            .map(|(index, &way)| {
                Subject::new(
                    way,
                    &Path::new(&directory).join(format!("probe-{index}")),
                    bytes,
                )
            })
            .collect();
        let mut workers = vec![0usize; subjects.len()];
        for _ in 0..slices {
            for (index, subject) in subjects.iter_mut().enumerate() {
                pin(matches!(subject.way, Way::RingLinkedPinned));
                let mut each = Vec::new();
                let mut writes = Vec::new();
                let started = Instant::now();
                while started.elapsed() < slice {
                    let took = subject.one().expect("op");
                    each.push(took.as_secs_f64() * 1e6);
                    if let Some(write) = subject.last_write {
                        writes.push(write.as_secs_f64() * 1e6);
                    }
                }
                let rate = each.len() as f64 / started.elapsed().as_secs_f64();
                subject.medians_us.push(median(&mut each));
                subject.rates.push(rate);
                if !writes.is_empty() {
                    subject.write_us.push(median(&mut writes));
                }
                workers[index] = workers[index].max(iowq_workers());
            }
        }
        println!("write {bytes} B, {slices} slices of {:?}", slice);
        for (subject, workers) in subjects.iter_mut().zip(&workers) {
            let write = if subject.write_us.is_empty() {
                String::new()
            } else {
                format!("  (write done at {:.0} us)", median(&mut subject.write_us))
            };
            println!(
                "  {:<22} p50 {:>7.1} us  {:>8.0} ops/s  {:>8.1} MB/s  io-wq threads {}{}",
                format!("{:?}", subject.way),
                median(&mut subject.medians_us),
                median(&mut subject.rates),
                median(&mut subject.rates) * bytes as f64 / 1e6,
                workers,
                write
            );
        }
        for index in 0..WAYS.len() {
            let _ = std::fs::remove_file(Path::new(&directory).join(format!("probe-{index}")));
        }
    }
}

//! The floor under the transports' ping-pong: the same round trip over
//! loopback with no frames and no transport, as blocking sockets and as
//! bare io_uring loops, so the transport's own cost can be told apart from
//! the kernel's.
//!
//! `cargo run --release -p synod-net --example uring_floor -- VARIANT BYTES DURATION_MS`
//! with VARIANT one of `blocking`, `uring-recv` (one-shot receive into a
//! fixed buffer), `uring-multishot` (multishot receive into a provided
//! buffer ring, as the transport does), each io_uring variant sending with
//! `MSG_DONTWAIT` and waiting in the same `io_uring_enter` that submits.
//! The io_uring wait has a 5 ms timeout; environment variables vary it:
//! `FLOOR_TIMER_OP` (one `IORING_OP_TIMEOUT` kept armed instead, as the
//! transport's driver does), `FLOOR_NO_TIMEOUT` (none), `FLOOR_NO_IOWAIT`,
//! `FLOOR_REGISTERED_RING` (enter through a registered ring descriptor).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use io_uring::types::BufRingEntry;
use io_uring::{cqueue, opcode, types, IoUring};

fn thread_cpu() -> Duration {
    // SAFETY: rusage is plain old data; getrusage fills it for this thread.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the pointer is to a live rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &raw mut usage) };
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

#[derive(Clone, Copy, PartialEq)]
enum Variant {
    Blocking,
    UringRecv,
    UringMultishot,
}

const REGISTER_RING_FDS: u32 = 20;
const ENTER_GETEVENTS: u32 = 1;
const ENTER_EXT_ARG: u32 = 8;
const ENTER_REGISTERED_RING: u32 = 16;
const ENTER_NO_IOWAIT: u32 = 128;

#[repr(C)]
struct RsrcUpdate {
    offset: u32,
    resv: u32,
    data: u64,
}

#[repr(C)]
struct GeteventsArg {
    sigmask: u64,
    sigmask_size: u32,
    min_wait_usec: u32,
    timeout: u64,
}

/// Variations of the wait, from the environment: FLOOR_NO_TIMEOUT,
/// FLOOR_NO_IOWAIT, FLOOR_REGISTERED_RING.
#[derive(Clone, Copy, Default)]
struct Knobs {
    no_timeout: bool,
    timer_op: bool,
    no_iowait: bool,
    registered: Option<u32>,
}

impl Knobs {
    fn from_env() -> Knobs {
        let set = |name: &str| std::env::var_os(name).is_some();
        Knobs {
            no_timeout: set("FLOOR_NO_TIMEOUT") || set("FLOOR_TIMER_OP"),
            timer_op: set("FLOOR_TIMER_OP"),
            no_iowait: set("FLOOR_NO_IOWAIT"),
            registered: set("FLOOR_REGISTERED_RING").then_some(0),
        }
    }
}

const SEND: u64 = 1;
const TIMER: u64 = 3;
const RECV: u64 = 2;
const GROUP: u16 = 7;
const BUFFERS: u16 = 64;
const BUFFER_BYTES: usize = 16 << 10;

/// A ring with one registered socket; for the multishot variant, a
/// provided-buffer ring too.
struct Side {
    ring: IoUring,
    buffers: Vec<Vec<u8>>,
    entries: *mut BufRingEntry,
    tail: u16,
}

impl Side {
    fn new(stream: &TcpStream, multishot: bool) -> Side {
        let ring = IoUring::builder()
            .setup_single_issuer()
            .setup_defer_taskrun()
            .setup_cqsize(256)
            .build(64)
            .expect("ring");
        ring.submitter()
            .register_files(&[stream.as_raw_fd()])
            .expect("files");
        let mut side = Side {
            ring,
            buffers: Vec::new(),
            entries: std::ptr::null_mut(),
            tail: 0,
        };
        if multishot {
            let layout = std::alloc::Layout::from_size_align(4096, 4096).expect("layout");
            // SAFETY: non-zero size; leaked for the process's life.
            side.entries = unsafe { std::alloc::alloc_zeroed(layout) }.cast();
            // SAFETY: page-aligned ring of BUFFERS entries that is never freed.
            unsafe {
                side.ring.submitter().register_buf_ring_with_flags(
                    side.entries as u64,
                    BUFFERS,
                    GROUP,
                    0,
                )
            }
            .expect("buf ring");
            side.buffers = (0..BUFFERS).map(|_| vec![0u8; BUFFER_BYTES]).collect();
            for bid in 0..BUFFERS {
                side.give(bid);
            }
        }
        side
    }

    fn give(&mut self, bid: u16) {
        let address = self.buffers[usize::from(bid)].as_mut_ptr() as u64;
        // SAFETY: the index is within the ring's BUFFERS entries.
        let entry = unsafe { &mut *self.entries.add(usize::from(self.tail % BUFFERS)) };
        entry.set_addr(address);
        entry.set_len(BUFFER_BYTES as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
        // SAFETY: the tail lies in the ring's first entry, which we own.
        let tail = unsafe { BufRingEntry::tail(self.entries) }.cast_mut();
        // SAFETY: a naturally aligned u16 the kernel only reads.
        unsafe { std::sync::atomic::AtomicU16::from_ptr(tail) }.store(self.tail, Ordering::Release);
    }

    /// Registers the ring's descriptor with this thread; returns its index.
    fn register_ring(&self) -> u32 {
        let mut update = RsrcUpdate {
            offset: u32::MAX,
            resv: 0,
            data: self.ring.as_raw_fd() as u64,
        };
        // SAFETY: the argument points to one live update record.
        let result = unsafe {
            libc::syscall(
                libc::SYS_io_uring_register,
                self.ring.as_raw_fd(),
                REGISTER_RING_FDS,
                (&raw mut update).cast::<libc::c_void>(),
                1,
            )
        };
        assert!(
            result >= 0,
            "register ring fd: {}",
            std::io::Error::last_os_error()
        );
        update.offset
    }

    /// Submits and waits through the registered ring index, 5 ms timeout.
    fn enter_registered(
        &mut self,
        index: u32,
        want: usize,
        no_iowait: bool,
    ) -> std::io::Result<usize> {
        let timeout = libc::timespec {
            tv_sec: 0,
            tv_nsec: 5_000_000,
        };
        let argument = GeteventsArg {
            sigmask: 0,
            sigmask_size: 0,
            min_wait_usec: 0,
            timeout: (&raw const timeout) as u64,
        };
        let mut sq = self.ring.submission();
        sq.sync();
        let to_submit = sq.len() as u32;
        drop(sq);
        let flags = ENTER_GETEVENTS
            | ENTER_EXT_ARG
            | ENTER_REGISTERED_RING
            | if no_iowait { ENTER_NO_IOWAIT } else { 0 };
        // SAFETY: the argument and timeout live across the call.
        let result = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                index,
                to_submit,
                want as u32,
                flags,
                (&raw const argument).cast::<libc::c_void>(),
                size_of::<GeteventsArg>(),
            )
        };
        if result < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(result as usize)
    }

    fn push(&mut self, entry: &io_uring::squeue::Entry) {
        // SAFETY: the buffers named by the entries live as long as the side.
        unsafe { self.ring.submission().push(entry) }.expect("room in the queue");
    }
}

/// Runs one side: `first` sends first (the client). Returns round trips
/// and CPU time.
fn uring_side(
    stream: TcpStream,
    variant: Variant,
    message: Vec<u8>,
    first: bool,
    stop: &AtomicBool,
    deadline: Option<Instant>,
) -> (u64, Duration) {
    let multishot = variant == Variant::UringMultishot;
    let mut side = Side::new(&stream, multishot);
    let mut knobs = Knobs::from_env();
    if knobs.registered.is_some() {
        knobs.registered = Some(side.register_ring());
    }
    let mut receive = vec![0u8; message.len()];
    let (mut received, mut round_trips, cpu_start) = (0usize, 0u64, thread_cpu());
    let arm_recv = |side: &mut Side, receive: &mut Vec<u8>, received: usize| {
        let entry = if multishot {
            opcode::RecvMulti::new(types::Fixed(0), GROUP)
                .build()
                .user_data(RECV)
        } else {
            opcode::Recv::new(
                types::Fixed(0),
                receive[received..].as_mut_ptr(),
                (receive.len() - received) as u32,
            )
            .build()
            .user_data(RECV)
        };
        side.push(&entry);
    };
    let send = opcode::Send::new(types::Fixed(0), message.as_ptr(), message.len() as u32)
        .flags(libc::MSG_DONTWAIT)
        .build()
        .user_data(SEND);
    arm_recv(&mut side, &mut receive, 0);
    let timer = types::Timespec::new().nsec(5_000_000);
    let timer_entry = opcode::Timeout::new(&raw const timer)
        .build()
        .user_data(TIMER);
    if knobs.timer_op {
        side.push(&timer_entry);
    }
    let mut want = 1;
    if first {
        side.push(&send);
        want = 2;
    }
    let timeout = types::Timespec::new().nsec(5_000_000);
    let args = types::SubmitArgs::new().timespec(&timeout);
    loop {
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let entered = match knobs {
            Knobs {
                no_timeout: true, ..
            } => side.ring.submitter().submit_and_wait(want),
            Knobs {
                registered: Some(index),
                no_iowait,
                ..
            } => side.enter_registered(index, want, no_iowait),
            Knobs {
                no_iowait: true, ..
            } => side.ring.submitter().submit_with_args_and_flags(
                want,
                &args,
                io_uring::EnterFlags::NO_IOWAIT,
            ),
            _ => side.ring.submitter().submit_with_args(want, &args),
        };
        match entered {
            Ok(_) => {}
            Err(error) if error.raw_os_error() == Some(libc::ETIME) => {}
            Err(error) => panic!("enter: {error}"),
        }
        want = 1;
        let mut completions = Vec::new();
        for cqe in side.ring.completion() {
            completions.push((cqe.user_data(), cqe.result(), cqe.flags()));
        }
        for (tag, result, flags) in completions {
            if tag == TIMER {
                side.push(&timer_entry);
                continue;
            }
            if tag == SEND {
                assert_eq!(result as usize, message.len(), "whole sends");
                continue;
            }
            if result <= 0 {
                return (round_trips, thread_cpu() - cpu_start);
            }
            received += result as usize;
            if multishot {
                let bid = cqueue::buffer_select(flags).expect("a buffer");
                side.give(bid);
                if !cqueue::more(flags) {
                    arm_recv(&mut side, &mut receive, 0);
                }
            }
            if received >= message.len() {
                received -= message.len();
                round_trips += 1;
                side.push(&send);
                want = 2;
            }
            if !multishot {
                arm_recv(&mut side, &mut receive, received);
            }
        }
    }
    (round_trips, thread_cpu() - cpu_start)
}

fn blocking_side(
    mut stream: TcpStream,
    message: Vec<u8>,
    first: bool,
    deadline: Option<Instant>,
) -> (u64, Duration) {
    let (mut buffer, mut round_trips, cpu_start) = (vec![0u8; message.len()], 0u64, thread_cpu());
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        if first && stream.write_all(&message).is_err() {
            break;
        }
        if stream.read_exact(&mut buffer).is_err() {
            break;
        }
        if !first && stream.write_all(&message).is_err() {
            break;
        }
        round_trips += 1;
    }
    (round_trips, thread_cpu() - cpu_start)
}

fn main() {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let variant = match arguments.first().map(String::as_str) {
        Some("uring-recv") => Variant::UringRecv,
        Some("uring-multishot") => Variant::UringMultishot,
        _ => Variant::Blocking,
    };
    let bytes: usize = arguments.get(1).and_then(|t| t.parse().ok()).unwrap_or(176);
    let duration = Duration::from_millis(
        arguments
            .get(2)
            .and_then(|t| t.parse().ok())
            .unwrap_or(1000),
    );
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    let address = listener.local_addr().expect("bound");
    let stop = Arc::new(AtomicBool::new(false));
    let server_stop = Arc::clone(&stop);
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("accepts");
        stream.set_nodelay(true).expect("nodelay");
        let message = vec![2u8; bytes];
        match variant {
            Variant::Blocking => blocking_side(stream, message, false, None),
            _ => uring_side(stream, variant, message, false, &server_stop, None),
        }
    });
    let stream = TcpStream::connect(address).expect("connects");
    stream.set_nodelay(true).expect("nodelay");
    let message = vec![1u8; bytes];
    let started = Instant::now();
    let deadline = Some(started + duration);
    let keep = stream.try_clone().expect("clone");
    let (round_trips, client_cpu) = match variant {
        Variant::Blocking => blocking_side(stream, message, true, deadline),
        _ => uring_side(stream, variant, message, true, &stop, deadline),
    };
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = keep.shutdown(std::net::Shutdown::Both);
    drop(keep);
    let (_, server_cpu) = server.join().expect("server");
    println!(
        "Sample {{ messages_per_second: {:.0}, cpu_ns_per_message: {:.0} }}",
        round_trips as f64 / elapsed.as_secs_f64(),
        (client_cpu + server_cpu).as_nanos() as f64 / round_trips.max(1) as f64
    );
}

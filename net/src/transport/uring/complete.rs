//! Completions: what the kernel reports back for the transport's operations.

use io_uring::{cqueue, Submitter};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::link_index_op;
use super::{
    give_back_large_buffer, UringTransport, LARGE_ANSWERED_FRAMES_MAX, LARGE_BACKED_UP_FRAMES,
    LARGE_STREAM_FRAMES_MIN, OP_ACCEPT, OP_CANCEL, OP_CLOSE, OP_CONNECT, OP_RECV, OP_SEND,
    OP_SHUTDOWN,
};
use crate::bytes::{page_start, ALIGNMENT};
use crate::transport::link::{Phase, Role};
use crate::transport::{CloseReason, Event, ACCEPT_RETRY_DELAY};
use std::time::Instant;

fn os_error(result: i32) -> CloseReason {
    CloseReason::Io(std::io::Error::from_raw_os_error(-result).to_string())
}

impl UringTransport {
    /// Takes one completion whose tag [`UringTransport::owns`].
    ///
    /// # Panics
    /// When the tag is not the transport's (a caller bug).
    pub fn complete(&mut self, cqe: &cqueue::Entry, submitter: &Submitter<'_>) {
        assert!(
            self.owns(cqe.user_data()),
            "completion routed to the transport that tagged it"
        );
        let (index, op) = link_index_op(cqe.user_data() - self.resources.tags.start);
        if op == OP_ACCEPT {
            return self.accepted(cqe, submitter);
        }
        let more = cqueue::more(cqe.flags());
        if !more {
            let link = self
                .links
                .get_mut(index)
                .expect("a slot with operations in flight is live");
            assert!(
                link.socket.ops_in_flight > 0,
                "a final completion for an operation in flight"
            );
            link.socket.ops_in_flight -= 1;
        }
        match op {
            OP_RECV => self.received(index, cqe),
            OP_SEND => self.sent(index, cqe),
            OP_CONNECT => self.connected(index, cqe.result()),
            OP_CANCEL => self.recv_cancel_done(index, cqe.result()),
            OP_SHUTDOWN | OP_CLOSE => {}
            _ => unreachable!("only the transport's own operations carry its tags"),
        }
        self.finish_if_drained(index);
    }

    fn received(&mut self, index: usize, cqe: &cqueue::Entry) {
        let result = cqe.result();
        let more = cqueue::more(cqe.flags());
        let bid = cqueue::buffer_select(cqe.flags());
        let cluster_id = self.config.cluster_id;
        let large_body_bytes = self.config.provided_buffer_bytes;
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        // What a one-shot receive wrote into (its only completion).
        let body_bytes_max = self.config.body_bytes_max;
        let (into_partial, mut recv_buffer) = if more {
            (false, None)
        } else {
            (
                std::mem::take(&mut link.socket.recv_into_partial),
                link.socket.recv_buffer.take(),
            )
        };
        assert!(
            !(into_partial && recv_buffer.is_some()) && (more || link.socket.recv_kept.is_none()),
            "one receive target at a time, and a kept frame start only between receives"
        );
        if !more {
            link.socket.recv_armed = false;
            link.socket.recv_cancel_submitted = false;
        }
        let phase = link.socket.stream_phase;
        let mut filled = false;
        let headers_before = link.decoder.headers_read();
        if result > 0 {
            self.received_since_prepare = true;
            link.socket.received_since_send = true;
            link.socket.stream_phase = (phase + result as usize) % ALIGNMENT;
        }
        let open = link.phase == Phase::Open;
        let outcome = match (result, bid) {
            (count, Some(bid)) if count > 0 => {
                self.receive_stats.multishot_receives += 1;
                let buffer = self
                    .buffers
                    .take(bid)
                    .expect("the kernel names one of our buffers")
                    .clone();
                let start = page_start(&buffer);
                let outcome = if open {
                    link.receive(
                        &buffer,
                        start..start + count as usize,
                        cluster_id,
                        &mut self.scratch,
                        &mut self.events,
                    )
                } else {
                    Ok(())
                };
                drop(buffer);
                self.buffers.recycle(bid);
                outcome
            }
            (count, None) if count > 0 && into_partial && open => {
                self.receive_stats.direct_receives += 1;
                // SAFETY: this receive wrote its `count` bytes into the room
                // `partial_room` gave when it was armed, and nothing fed the
                // decoder meanwhile (one receive in flight per connection).
                unsafe {
                    link.receive_direct(
                        count as usize,
                        cluster_id,
                        &mut self.scratch,
                        &mut self.events,
                    )
                }
            }
            (count, None) if count > 0 && open => match recv_buffer.take() {
                Some(mut large) => {
                    self.receive_stats.large_receives += 1;
                    self.receive_stats.kept_frame_receives += u64::from(large.held > 0);
                    // A fresh receive that filled its whole buffer with more
                    // than one frame left more in the socket: a stream,
                    // whatever the answers (one frame larger than the buffer
                    // fills it too, and goes on straight into its body).
                    filled = large.held == 0 && count as usize == large.buffer.len() - large.start;
                    large.held += count as usize;
                    large.missing = 0;
                    if link.decoder.is_between_frames()
                        && large.keep_incomplete_frame(body_bytes_max)
                    {
                        link.socket.recv_kept = Some(large);
                        Ok(())
                    } else {
                        let received = link.receive(
                            &large.buffer,
                            large.start..large.start + large.held,
                            cluster_id,
                            &mut self.scratch,
                            &mut self.events,
                        );
                        recv_buffer = Some(large);
                        received
                    }
                }
                None => Ok(()),
            },
            (0, _) => Err(CloseReason::EndOfStream),
            (error, _) if error == -libc::ENOBUFS => Ok(()), // re-armed once buffers return
            // Our cancel ended the multishot receive (large frames follow),
            // or `release` ended everything.
            (error, _) if error == -libc::ECANCELED => Ok(()),
            (error, _) if error < 0 => Err(os_error(error)),
            _ => Ok(()),
        };
        if let Some(large) = recv_buffer.take_if(|large| large.held > 0 && result <= 0) {
            // A continuation ended without bytes (cancelled): the frame's
            // start, which the decoder has not seen, waits for the next.
            link.socket.recv_kept = Some(large);
        }
        if let Some(large) = recv_buffer {
            give_back_large_buffer(&mut self.large_buffers, large.buffer);
        }
        if let Err(reason) = outcome {
            return self.start_closing(index, reason);
        }
        if result <= 0 {
            return;
        }
        // Receive large frames that the connection answers one-shot (each
        // arrives whole in one receive into a warm buffer), and small
        // ones, or a stream of large ones, multishot: a one-shot receive
        // drains at most its buffer per turn and would leave a stream
        // backed up in the socket.
        let socket = &mut link.socket;
        // Low 32 bits of the header count: only differences of a few
        // frames matter, and wrapping differences stay right.
        let headers_read = link.decoder.headers_read() as u32;
        let frames_since_send = headers_read.wrapping_sub(socket.headers_at_send);
        let large = link.decoder.last_body_bytes() > large_body_bytes;
        let frames_now = link.decoder.headers_read() - headers_before;
        socket.multishot_frames_left = socket
            .multishot_frames_left
            .saturating_sub(u32::try_from(frames_now).unwrap_or(u32::MAX));
        if filled && frames_now > 1 {
            socket.large_frames = false;
            socket.multishot_frames_left = LARGE_BACKED_UP_FRAMES;
        } else if large
            && frames_since_send <= LARGE_ANSWERED_FRAMES_MAX
            && socket.multishot_frames_left == 0
        {
            socket.large_frames = true;
        } else if frames_since_send > LARGE_STREAM_FRAMES_MIN
            || (!large && link.decoder.is_between_frames())
        {
            socket.large_frames = false;
        }
    }

    /// The cancel of a multishot receive completed. The receive ends with
    /// its own (last) completion; a receive the kernel could not cancel
    /// now (`EALREADY`) is asked again next turn.
    fn recv_cancel_done(&mut self, index: usize, result: i32) {
        if result == -libc::EALREADY {
            if let Some(link) = self.links.get_mut(index) {
                link.socket.recv_cancel_submitted = false;
            }
        }
    }

    fn sent(&mut self, index: usize, cqe: &cqueue::Entry) {
        let result = cqe.result();
        let flags = cqe.flags();
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        if cqueue::notif(flags) {
            // SEND_ZC's second completion: the kernel is done with the buffer.
            link.socket.zero_copy_notification_due = false;
            link.socket.send_in_flight = false;
            return;
        }
        let nonblocking = std::mem::take(&mut link.socket.send_nonblocking);
        if nonblocking && result == -libc::EAGAIN {
            // The socket is full: the next send waits for room.
            link.socket.send_in_flight = false;
            link.socket.send_waits_for_room = true;
            link.socket.whole_send_bytes_max = 0;
            return;
        }
        if result < 0 {
            if !cqueue::more(flags) {
                link.socket.send_in_flight = false;
                link.socket.zero_copy_notification_due = false;
            }
            return self.start_closing(index, os_error(result));
        }
        link.sent(result as usize);
        // A send that took only part of its bytes found the socket full.
        let whole = link.unsent().is_empty();
        link.socket.send_waits_for_room = !whole;
        link.socket.whole_send_bytes_max = if whole {
            link.socket.whole_send_bytes_max.max(result as usize)
        } else {
            0
        };
        if !cqueue::more(flags) {
            link.socket.send_in_flight = false;
            link.socket.zero_copy_notification_due = false;
        }
    }

    fn connected(&mut self, index: usize, result: i32) {
        let hello = self.config.hello();
        let body_bytes_max = self.config.body_bytes_max;
        let Some(link) = self.links.get_mut(index) else {
            return;
        };
        link.socket.connect_address = None;
        if link.phase != Phase::Connecting {
            return;
        }
        if result < 0 {
            // Never open: no Closed event; the slot drains, then redials.
            link.phase = Phase::Closing;
            return self.submit_close(index);
        }
        let Role::Outbound { peer, backoff, .. } = &mut link.role else {
            return;
        };
        backoff.reset();
        let peer = *peer;
        link.phase = Phase::Open;
        link.queue_hello_first(&hello, body_bytes_max);
        self.events.push(Event::Connected {
            connection: link.id,
            peer,
        });
    }

    /// A connection arrived on the listener: move it into a file slot of ours.
    fn accepted(&mut self, cqe: &cqueue::Entry, submitter: &Submitter<'_>) {
        let more = cqueue::more(cqe.flags());
        if !more {
            self.accept_armed = false;
        }
        let result = cqe.result();
        if result < 0 {
            if !more && result != -libc::ECANCELED {
                // Armed again at once, it would fail at once (out of
                // descriptors, say): the connections wait in the backlog.
                self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY_DELAY);
            }
            return;
        }
        // SAFETY: a successful accept returns a new descriptor that we own.
        let socket = std::net::TcpStream::from(unsafe { OwnedFd::from_raw_fd(result) });
        let _ = socket.set_nodelay(true);
        let zero_copy_allowed = self.config.zero_copy_allowed(socket.peer_addr().ok());
        let file = if self.links.is_full() {
            None
        } else {
            self.free_files.pop()
        };
        let Some(file) = file else {
            return self.log.refused();
        };
        if submitter
            .register_files_update(file, &[socket.as_raw_fd()])
            .is_err()
        {
            self.free_files.push(file);
            return;
        }
        drop(socket); // the registered file keeps the socket open
        let socket = super::UringSocket {
            file: Some(file),
            zero_copy_allowed,
            ..super::UringSocket::default()
        };
        let index = self
            .links
            .insert(
                Role::Inbound,
                Phase::Open,
                socket,
                self.config.body_bytes_max,
            )
            .expect("checked for room above");
        let connection = self
            .links
            .get(index)
            .map(|link| link.id)
            .expect("inserted above");
        self.events.push(Event::Accepted { connection });
    }
}

//! synod-net: what travels between replicas and clients, and how.
//!
//! - [`wire`]: protocol numbers, the [`wire::Batch`], replica messages,
//!   client requests and responses, frame kinds.
//! - [`frame`]: the frame header, encoding into send buffers, and checked
//!   access to received bodies.
//! - [`decode`]: the stream decoder that cuts frames out of receives.
//! - [`transport`]: the io_uring and portable transports.

pub mod bytes;
pub mod checksum;
pub mod decode;
pub mod frame;
pub mod samples;
pub mod transport;
pub mod wire;

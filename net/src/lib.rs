//! synod-net: what travels between replicas and clients.
//!
//! Today this crate holds the wire module: the protocol numbers, the
//! [`wire::Batch`] that carries one slot's commands as opaque bytes, and the
//! replica's messages. Frames and transports build on these types.

pub mod wire;

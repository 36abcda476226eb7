//! synod-log: the O_DIRECT segmented write-ahead log under every replica.
//!
//! The log format, its back ends and recovery arrive with the log issue; the
//! replica's persist contract it will implement is documented on
//! `synod_engine::paxos::Ready`.

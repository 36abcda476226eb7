//! synod-bench: load generators and criterion micro-benchmarks.
//!
//! [`inprocess::Group`] drives three replicas with in-memory message passing
//! and an instant disk: the replica's own cost, with no I/O at all.

pub mod inprocess;
pub mod net;

//! synod-engine: the sans-IO Multi-Paxos replica, the state machines on its
//! log, a linearizability checker and (feature `sim`) the deterministic
//! simulator that drives them all on virtual time.

pub mod check;
pub mod paxos;
#[cfg(feature = "sim")]
pub mod sim;
pub mod sm;

pub use synod_net::wire;

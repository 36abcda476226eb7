//! The client history the simulator records: the checker's [`Operation`]
//! type, so a run's history goes straight to
//! [`crate::check::check_history`] and writes out as the checker's JSON
//! lines.

pub use crate::check::{Operation, OperationKind, Outcome, Output};

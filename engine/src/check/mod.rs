//! Linearizability checking of client histories.

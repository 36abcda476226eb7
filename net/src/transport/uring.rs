//! The io_uring back end (placeholder while it is written).

//! synod-bench: load generators and criterion micro-benchmarks.

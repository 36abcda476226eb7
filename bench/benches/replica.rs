//! The replica alone: three replicas passing messages in memory with an
//! instant disk, batches opaque, no state machine. Reports commands chosen
//! and known to the leader per second, batch building included.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use synod_bench::inprocess::Group;

const PAYLOAD_BYTES: usize = 16;

fn chosen_commands(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("replica_chosen");
    for (command_count, batch_count) in [(1usize, 4096u64), (64, 1024), (1024, 128)] {
        let commands = command_count as u64 * batch_count;
        group.throughput(Throughput::Elements(commands));
        let id = BenchmarkId::new("commands_per_batch", command_count);
        group.bench_with_input(id, &command_count, |bencher, &command_count| {
            let mut cluster = Group::new(3);
            bencher.iter(|| cluster.run(batch_count, command_count, PAYLOAD_BYTES));
        });
    }
    group.finish();
}

fn batch_building(criterion: &mut Criterion) {
    let mut group = criterion.benchmark_group("batch_build");
    for command_count in [1usize, 64, 1024] {
        group.throughput(Throughput::Elements(command_count as u64));
        let id = BenchmarkId::new("commands_per_batch", command_count);
        group.bench_with_input(id, &command_count, |bencher, &command_count| {
            let mut cluster = Group::new(3);
            bencher.iter(|| cluster.build_batch(command_count, PAYLOAD_BYTES));
        });
    }
    group.finish();
}

criterion_group!(benches, chosen_commands, batch_building);
criterion_main!(benches);

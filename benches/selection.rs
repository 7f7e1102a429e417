//! Selection cost per algorithm at 3, 30 and 300 members (all eligible).

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use drover::balance::{build, SelectContext, StaticMembers};
use drover::config::Balance;

fn selection(c: &mut Criterion) {
    for n in [3usize, 30, 300] {
        let members = StaticMembers::with_weights((0..n).map(|i| 1 + (i % 3) as u32).collect());
        let seeds: Vec<u64> = (0..n as u64).collect();
        for b in Balance::ALL {
            let sel = build(b, &members.weights, &seeds, None);
            let ctx = SelectContext {
                hash: Some(0x1234_5678),
                now: None,
            };
            c.bench_function(&format!("{}/{n}", b.as_str()), |bench| {
                bench.iter(|| sel.select(black_box(&members), &ctx, &|_| true))
            });
        }
    }
}

criterion_group!(benches, selection);
criterion_main!(benches);

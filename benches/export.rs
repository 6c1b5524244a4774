//! Export throughput in posts per second: a real timeline (the demo events over 20k users,
//! cycled to 200k posts with fresh ids) streamed into JSONL, CSV and Parquet files.
#![allow(missing_docs)] // criterion_group! generates an undocumented function

use chorus::engine::Pipeline;
use chorus::events::parse_events_numbered;
use chorus::export::formats::TableFile;
use chorus::export::{Format, Table};
use chorus::timeline::{Post, PostId};
use chorus::{Population, SeedSet, World};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const POSTS: usize = 200_000;

fn posts() -> Vec<Post> {
    let world = World::embedded().expect("world");
    let seeds = SeedSet::embedded(&world).expect("seeds");
    let population = Population::generate(&seeds, &world, 20_000, 42).expect("population");
    let mut pipeline = Pipeline::new(population).expect("pipeline");
    let bytes = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/events/demo.jsonl")).expect("events");
    let mut base = Vec::new();
    for (i, (line, ev)) in parse_events_numbered(&bytes).into_iter().enumerate() {
        let ev = ev.expect("demo event");
        base.extend(pipeline.process(&ev, i as u32, line).expect("processed").0);
    }
    (0..POSTS)
        .map(|i| {
            let mut p = base[i % base.len()].clone();
            p.id = PostId(i as u64);
            p
        })
        .collect()
}

fn export(c: &mut Criterion) {
    let posts = posts();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut group = c.benchmark_group("export");
    group.throughput(Throughput::Elements(POSTS as u64));
    group.sample_size(10);
    for format in [Format::Jsonl, Format::Csv, Format::Parquet] {
        group.bench_function(format!("{}_200k_posts", format.extension()), |b| {
            b.iter(|| {
                let mut f = TableFile::create(dir.path(), Table::Posts, format, 65_536).expect("create");
                for p in &posts {
                    f.post(p).expect("write");
                }
                f.finish().expect("finish").file.bytes
            })
        });
    }
    group.finish();
}

criterion_group!(benches, export);
criterion_main!(benches);

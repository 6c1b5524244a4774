//! Fuzzing every reader of outside input (issue 23, item 1) on stable Rust: each target of
//! `targets.rs` runs on its regression inputs (`tests/corpus/<target>/`) and then on inputs
//! mutated from valid ones (and some random ones) by a fixed-seed generator. A case fails if
//! it panics, takes over 1 s, or needs over 1 GiB more memory than before it; a failing input is
//! written to `tests/corpus/<target>/` so it stays a regression input once fixed.
//!
//! `cargo test --release --test fuzz` is the short run (a few thousand cases per target).
//! Longer: `CHORUS_FUZZ_CASES=1000000 CHORUS_FUZZ_SECONDS=600 cargo test --release --test fuzz
//! -- --nocapture` (cases per target, stopping at whichever comes first; `CHORUS_FUZZ_SEED`
//! picks another sequence; `CHORUS_FUZZ_ONLY=name,name` some targets). Coverage-guided runs
//! of the same functions: `fuzz/README.md`.

mod targets;

use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

/// The most memory a case may take beyond what was in use before it.
const ALLOC_LIMIT: usize = 1 << 30;
/// The longest a case may take.
const TIME_LIMIT: Duration = Duration::from_secs(1);

/// Tracks the bytes in use; each case may take at most [`ALLOC_LIMIT`] more than before it.
/// A case past it gets a refused allocation, which aborts the run naming its size (set
/// `CHORUS_FUZZ_TRACE=1` to keep each input in `tests/corpus/<target>/last-input` first).
#[global_allocator]
static ALLOC: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// Pieces that tend to matter to these readers.
const TOKENS: &[&[u8]] = &[
    b"{{",
    b"}}",
    b"{{#each x}}",
    b"{{/each}}",
    b"{{> p}}",
    b"{{{",
    b"\t",
    b"\n",
    b"\r\n",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"1e309",
    b"-1",
    b"0",
    b"18446744073709551616",
    b"-9223372036854775809",
    b"NaN",
    b"null",
    b"true",
    b"{}",
    b"[]",
    b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
    b"{\"a\":",
    b"\"id\":",
    b"\"time\":",
    b"\"text\":",
    b"\"frame\":",
    b"\"kind\":",
    b"\"roles\":",
    b"\"score\":",
    b"|",
    b"#",
    b"\xff\xfe",
    b"\xc3",
    b"\xe2\x80\xae",
    b"\x00",
    b"CHSNAP01",
    b"CHSTATE1",
    b"END\0",
    b"META",
    b"CELL",
    b"RELS",
    b"2026-02-30T25:61:00Z",
];

fn mutate(rng: &mut rand_pcg::Pcg64, seeds: &[Vec<u8>]) -> Vec<u8> {
    let roll = rng.random_range(0..100);
    if roll < 8 || seeds.is_empty() {
        let n = rng.random_range(0..600);
        return (0..n).map(|_| rng.random()).collect();
    }
    if roll < 14 {
        let mut v = Vec::new();
        for _ in 0..rng.random_range(1..40) {
            v.extend_from_slice(TOKENS[rng.random_range(0..TOKENS.len())]);
        }
        return v;
    }
    let mut v = seeds[rng.random_range(0..seeds.len())].clone();
    for _ in 0..rng.random_range(1..9) {
        let len = v.len();
        let at = if len == 0 { 0 } else { rng.random_range(0..len) };
        match rng.random_range(0..9) {
            0 if len > 0 => v[at] ^= 1 << rng.random_range(0..8),
            1 if len > 0 => v[at] = rng.random(),
            2 => {
                let n = rng.random_range(1..16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.random()).collect();
                v.splice(at..at, bytes);
            }
            3 if len > 0 => {
                let end = (at + rng.random_range(1..64)).min(len);
                v.drain(at..end);
            }
            4 if len > 0 => {
                let end = (at + rng.random_range(1..256)).min(len);
                let piece = v[at..end].to_vec();
                let to = rng.random_range(0..=len);
                v.splice(to..to, piece);
            }
            5 => v.truncate(at),
            6 => {
                let t = TOKENS[rng.random_range(0..TOKENS.len())];
                v.splice(at..at, t.iter().copied());
            }
            7 => {
                let other = &seeds[rng.random_range(0..seeds.len())];
                if !other.is_empty() {
                    let from = rng.random_range(0..other.len());
                    let end = (from + rng.random_range(1..512)).min(other.len());
                    v.splice(at..at, other[from..end].iter().copied());
                }
            }
            _ => {
                // An 8-byte little-endian number (a length, a count, an offset) overwritten.
                if len >= 8 {
                    let at = rng.random_range(0..len - 7);
                    let x: u64 = match rng.random_range(0..4) {
                        0 => u64::MAX,
                        1 => rng.random_range(0..1 << 20),
                        2 => 1 << rng.random_range(20..63),
                        _ => rng.random(),
                    };
                    v[at..at + 8].copy_from_slice(&x.to_le_bytes());
                }
            }
        }
    }
    v
}

/// What went wrong with one input.
fn check(name: &str, f: targets::Target, input: &[u8]) -> Option<String> {
    if std::env::var_os("CHORUS_FUZZ_TRACE").is_some() {
        let _ = std::fs::create_dir_all(corpus(name));
        let _ = std::fs::write(corpus(name).join("last-input"), input);
    }
    let _ = ALLOC.set_limit(ALLOC.allocated().saturating_add(ALLOC_LIMIT));
    let start = Instant::now();
    let run = std::panic::catch_unwind(|| f(input));
    let took = start.elapsed();
    let _ = ALLOC.set_limit(usize::MAX);
    match run {
        Err(e) => {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Some(format!("{name}: panicked: {why}"))
        }
        Ok(()) if took > TIME_LIMIT => Some(format!("{name}: took {took:?}")),
        Ok(()) => None,
    }
}

fn corpus(name: &str) -> std::path::PathBuf {
    targets::root().join("tests/corpus").join(name)
}

fn env<T: std::str::FromStr>(key: &str) -> Option<T> {
    std::env::var(key).ok().and_then(|v| v.parse().ok())
}

#[test]
fn every_reader_survives_hostile_input() {
    let cases: u64 = env("CHORUS_FUZZ_CASES").unwrap_or(0);
    let seconds: f64 = env("CHORUS_FUZZ_SECONDS").unwrap_or(f64::INFINITY);
    let seed: u64 = env("CHORUS_FUZZ_SEED").unwrap_or(23);
    let only: Option<String> = std::env::var("CHORUS_FUZZ_ONLY").ok();
    let _ = targets::fixture();
    // Quiet panics while fuzzing: each is reported below with its input.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut failures = Vec::new();
    for &(name, f) in targets::TARGETS {
        if only.as_deref().is_some_and(|o| !o.split(',').any(|x| x == name)) {
            continue;
        }
        // The short run: fewer cases for the targets whose inputs are whole files.
        let n = if cases > 0 {
            cases
        } else {
            match name {
                "snapshot" | "snapshot_edits" | "seeds" | "world" | "templates" => 300,
                _ => 3_000,
            }
        };
        let mut regressions = 0;
        if let Ok(dir) = std::fs::read_dir(corpus(name)) {
            let mut files: Vec<_> = dir.flatten().map(|e| e.path()).collect();
            files.sort();
            for path in files {
                let input = std::fs::read(&path).unwrap_or_default();
                regressions += 1;
                if let Some(why) = check(name, f, &input) {
                    failures.push(format!("{why} (regression input {})", path.display()));
                }
            }
        }
        let seeds = targets::seeds_for(name);
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed ^ fnv(name.as_bytes()));
        let start = Instant::now();
        let mut done = 0u64;
        let mut slowest = Duration::ZERO;
        while done < n && start.elapsed().as_secs_f64() < seconds {
            let input = mutate(&mut rng, &seeds);
            let t = Instant::now();
            if let Some(why) = check(name, f, &input) {
                let dir = corpus(name);
                let _ = std::fs::create_dir_all(&dir);
                let path = dir.join(format!("crash-{:016x}", fnv(&input)));
                let _ = std::fs::write(&path, &input);
                failures.push(format!("{why} (input saved to {})", path.display()));
            }
            slowest = slowest.max(t.elapsed());
            done += 1;
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "fuzz {name}: {done} inputs in {secs:.1} s ({:.0}/s), {regressions} regression inputs, slowest {slowest:?}",
            done as f64 / secs.max(1e-9)
        );
    }
    std::panic::set_hook(hook);
    assert!(failures.is_empty(), "{} failing inputs:\n{}", failures.len(), failures.join("\n"));
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, &b| (h ^ b as u64).wrapping_mul(0x100000001b3))
}

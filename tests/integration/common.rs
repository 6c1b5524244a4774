//! Shared fixtures: the embedded world and seeds, and populations generated once per run.

use chorus::{Population, SeedSet, UserId, World};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The shipped world.
pub fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| World::embedded().unwrap())
}

/// The shipped seed set.
pub fn seeds() -> &'static SeedSet {
    static S: OnceLock<SeedSet> = OnceLock::new();
    S.get_or_init(|| SeedSet::embedded(world()).unwrap())
}

/// A population from the shipped data with default graph parameters.
pub fn generate(users: u32, seed: u64) -> Population {
    Population::generate(seeds(), world(), users, seed).unwrap()
}

/// A 20k population shared by tests that only read it.
pub fn pop_20k() -> &'static Population {
    static P: OnceLock<Population> = OnceLock::new();
    P.get_or_init(|| generate(20_000, 2024))
}

/// `tests/data/<rel>`.
pub fn data_dir(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(rel)
}

/// About `k` ids spread over `0..n`, always including the first and the last.
pub fn sample_ids(n: usize, k: usize) -> Vec<UserId> {
    let step = (n / k.max(1)).max(1);
    let mut ids: Vec<UserId> = (0..n).step_by(step).map(|i| UserId(i as u32)).collect();
    if ids.last() != Some(&UserId(n as u32 - 1)) {
        ids.push(UserId(n as u32 - 1));
    }
    ids
}

/// Asserts two byte strings are equal, reporting the first difference instead of dumping both.
pub fn assert_same_bytes(a: &[u8], b: &[u8], what: &str) {
    if a != b {
        let at = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
        panic!("{what}: differ at byte {at} (lengths {} and {})", a.len(), b.len());
    }
}

/// Mean and population standard deviation.
pub fn mean_std(xs: impl IntoIterator<Item = f64>) -> (f64, f64) {
    let v: Vec<f64> = xs.into_iter().collect();
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

/// The first `n` labelled events without their labels, plus `extra` lines, written to
/// `dir/events.jsonl`.
pub fn labelled_events(dir: &std::path::Path, n: usize, extra: &str) -> PathBuf {
    let text = std::fs::read_to_string(data_dir("events/labelled.jsonl")).unwrap();
    let mut out = String::new();
    for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')).take(n) {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        v.as_object_mut().unwrap().remove("label");
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out.push_str(extra);
    let path = dir.join("events.jsonl");
    std::fs::write(&path, out).unwrap();
    path
}

//! Observers of long work (population generation, graph building): a stage starts, units of
//! it get done. Called from worker threads.

/// Observer of generation progress. Called from worker threads; implementations must be cheap.
pub trait Progress: Sync {
    /// A new stage starts with `total` units of work (the previous one ended).
    fn stage(&self, _name: &'static str, _total: u64) {}
    /// `n` more units of the current stage are done.
    fn advance(&self, _n: u64) {}
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;
impl Progress for NoProgress {}

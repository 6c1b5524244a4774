//! The live LLM stage for the channel engine: a dispatcher thread queues submitted items by
//! priority and forms batches on the wall clock (full groups at once, partial ones after their
//! priority's maximum wait); `concurrency` sender threads run the batches. Outcomes come back
//! on a channel.
//!
//! Invariants: [`Stage::submit`] never blocks (a full input channel hands the item back for
//! template fallback); every accepted item yields exactly one [`Outcome`] (LLM, cache or
//! template), also on shutdown, when waiting items are flushed and sent.

use super::batch::{Batch, Batcher};
use super::route::Item;
use super::{Llm, Outcome};
use crate::events::Priority;
use crate::population::Population;
use crate::templates::Templates;
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A running stage.
pub struct Stage {
    items: Option<Sender<Item>>,
    outcomes: Receiver<Outcome>,
    threads: Vec<JoinHandle<()>>,
}

impl Stage {
    /// Starts the dispatcher and sender threads.
    pub fn start(llm: Arc<Llm>, population: Arc<Population>, templates: Arc<Templates>) -> crate::Result<Stage> {
        let capacity = llm.config().batch.capacity.max(1);
        let senders = llm.config().client.concurrency.max(1);
        let (item_tx, item_rx) = bounded::<Item>(capacity);
        let (batch_tx, batch_rx) = bounded::<Batch<Item>>(senders);
        let (out_tx, out_rx) = unbounded::<Outcome>();
        let clock = Instant::now();
        let spawn = |name: String, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new().name(name).spawn(f).map_err(|e| crate::Error::io("chorus llm thread", e))
        };
        let mut threads = Vec::new();
        {
            let (llm, population, templates, out_tx) =
                (llm.clone(), population.clone(), templates.clone(), out_tx.clone());
            threads.push(spawn(
                "chorus-llm-dispatch".into(),
                Box::new(move || dispatch(&llm, &population, &templates, clock, item_rx, batch_tx, out_tx)),
            )?);
        }
        for k in 0..senders {
            let (llm, population, templates, out_tx, batch_rx) =
                (llm.clone(), population.clone(), templates.clone(), out_tx.clone(), batch_rx.clone());
            threads.push(spawn(
                format!("chorus-llm-send-{k}"),
                Box::new(move || {
                    for b in batch_rx.iter() {
                        let t = clock.elapsed().as_micros() as u64;
                        let queued: Vec<u64> = b.items.iter().map(|(q, _)| t.saturating_sub(*q)).collect();
                        let items: Vec<Item> = b.items.into_iter().map(|(_, i)| i).collect();
                        for o in llm.run_batch(&items, &queued, &population, &templates) {
                            if out_tx.send(o).is_err() {
                                return;
                            }
                        }
                    }
                }),
            )?);
        }
        Ok(Stage { items: Some(item_tx), outcomes: out_rx, threads })
    }

    /// Hands an item to the stage without blocking; `Err` gives it back when the stage is full
    /// or stopped (the caller keeps the template text).
    #[allow(clippy::result_large_err)] // the item comes back, as crossbeam's TrySendError does
    pub fn submit(&self, item: Item) -> Result<(), Item> {
        match &self.items {
            Some(tx) => tx.try_send(item).map_err(|e| match e {
                TrySendError::Full(i) | TrySendError::Disconnected(i) => i,
            }),
            None => Err(item),
        }
    }

    /// Where outcomes come out.
    pub fn outcomes(&self) -> &Receiver<Outcome> {
        &self.outcomes
    }

    /// Stops accepting items, sends what waits, and joins the threads. Outcomes not yet
    /// received stay readable from the returned receiver.
    pub fn shutdown(mut self) -> Receiver<Outcome> {
        self.items = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.outcomes.clone()
    }
}

fn dispatch(
    llm: &Llm,
    population: &Population,
    templates: &Templates,
    clock: Instant,
    items: Receiver<Item>,
    batches: Sender<Batch<Item>>,
    out: Sender<Outcome>,
) {
    let now = || clock.elapsed().as_micros() as u64;
    let mut batcher: Batcher<Item> = Batcher::new(llm.config().batch.clone());
    let mut open = true;
    while open || !batcher.is_empty() {
        let wait = match batcher.next_due() {
            Some(due) => Duration::from_micros(due.saturating_sub(now())),
            None => Duration::from_millis(200),
        };
        let mut take = |item: Item| {
            if item.priority != Priority::High {
                if let Some(o) = llm.from_cache(&item, population, templates) {
                    return out.send(o).is_ok();
                }
            }
            let (p, g) = (item.priority, Llm::group(&item));
            match batcher.push(item, p, g, now()) {
                Ok(()) => true,
                Err(back) => {
                    llm.budget().record_fallback(back.ty, 1);
                    out.send(llm.fallback(&back, population, templates)).is_ok()
                }
            }
        };
        if open {
            match items.recv_timeout(wait) {
                Ok(item) => {
                    if !take(item) {
                        return;
                    }
                    while let Ok(item) = items.try_recv() {
                        if !take(item) {
                            return;
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        }
        let t = now();
        while let Some(b) = if open { batcher.pop(t) } else { batcher.flush() } {
            if batches.send(b).is_err() {
                return;
            }
        }
    }
}

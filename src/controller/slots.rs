//! The reconcile slots: at most `--concurrency` engine passes run at once, and aborts (deletion,
//! `engineState: stop`, the abort annotation) may hold only part of them, so that a mass abort or a
//! mass deletion never keeps a normal engine from launching (docs/performance.md "Mass abort").
//!
//! kube-runtime's Controller has one FIFO queue and one concurrency limit: with that alone a fresh
//! engine waited behind every deletion queued before it. So the Controller dispatches passes
//! unbounded (src/controller/run.rs) and they wait here instead, on tokio's fair semaphores: every
//! pass takes a slot of `all`; an abort first takes one of `aborts` (`all` minus a reserve), so the
//! reserve is always left to the other passes. A waiting pass is a small future (the pass itself is
//! built once it holds its slot), and it plans on the engine as cached when it gets the slot, as a
//! pass dispatched by the Controller at that moment would.
use std::sync::Arc;

use kube::core::DeserializeGuard;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::api::ChaosEngine;
use crate::engine::aborting;

pub struct Slots {
    all: Semaphore,
    aborts: Semaphore,
    engines: Store<DeserializeGuard<ChaosEngine>>,
}

/// The permits of one pass, released when it ends.
pub struct Held<'a> {
    _abort: Option<SemaphorePermit<'a>>,
    _slot: SemaphorePermit<'a>,
}

impl Slots {
    /// `concurrency` slots, a quarter of them (at least one) reserved for passes that are not
    /// aborts; with a single slot there is nothing to reserve. `engines` is the Controller's cache.
    pub fn new(concurrency: u16, engines: Store<DeserializeGuard<ChaosEngine>>) -> Self {
        let all = usize::from(concurrency.max(1));
        Self {
            all: Semaphore::new(all),
            aborts: Semaphore::new(all - reserve(all)),
            engines,
        }
    }

    /// Waits for a slot for a pass over `obj`; then the engine as cached now (`None`: it is gone
    /// from the cache, or the controller is shutting down, see [`Slots::close`]).
    pub async fn take(
        &self,
        obj: Arc<DeserializeGuard<ChaosEngine>>,
    ) -> Option<(Held<'_>, Arc<DeserializeGuard<ChaosEngine>>)> {
        let abort = match &obj.0 {
            Ok(engine) if aborting(engine) => Some(self.aborts.acquire().await.ok()?),
            _ => None,
        };
        let slot = self.all.acquire().await.ok()?;
        let latest = self.engines.get(&ObjectRef::from_obj(obj.as_ref()))?;
        Some((
            Held {
                _abort: abort,
                _slot: slot,
            },
            latest,
        ))
    }

    /// On shutdown: passes still waiting end at once (the Controller drains only those in flight).
    pub fn close(&self) {
        self.all.close();
        self.aborts.close();
    }
}

fn reserve(all: usize) -> usize {
    if all > 1 { (all / 4).max(1) } else { 0 }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use kube::ResourceExt;
    use kube::runtime::reflector::store::Writer;
    use kube::runtime::watcher;

    use super::*;
    use crate::engine::fixtures;

    fn cached(names: &[(&str, bool)]) -> Store<DeserializeGuard<ChaosEngine>> {
        let mut writer = Writer::<DeserializeGuard<ChaosEngine>>::default();
        for (name, abort) in names {
            let mut e = fixtures::engine();
            e.metadata.name = Some((*name).into());
            if *abort {
                e.annotations_mut()
                    .insert(crate::api::ABORT_ANNOTATION.into(), "true".into());
            }
            writer.apply_watcher_event(&watcher::Event::Apply(DeserializeGuard(Ok(e))));
        }
        writer.as_reader()
    }

    fn get(
        store: &Store<DeserializeGuard<ChaosEngine>>,
        name: &str,
    ) -> Arc<DeserializeGuard<ChaosEngine>> {
        store
            .state()
            .into_iter()
            .find(|e| e.0.as_ref().unwrap().metadata.name.as_deref() == Some(name))
            .unwrap()
    }

    #[tokio::test]
    async fn a_normal_pass_gets_a_slot_while_aborts_fill_theirs() {
        let names: Vec<String> = (0..10).map(|i| format!("abort-{i}")).collect();
        let mut all: Vec<(&str, bool)> = names.iter().map(|n| (n.as_str(), true)).collect();
        all.push(("fresh", false));
        let store = cached(&all);
        let slots = Slots::new(8, store.clone());
        // 8 slots: 6 for aborts, 2 kept for the rest
        let mut held = Vec::new();
        for n in &names[..6] {
            held.push(slots.take(get(&store, n)).await.unwrap());
        }
        let more_aborts = tokio::time::timeout(
            Duration::from_millis(50),
            slots.take(get(&store, &names[6])),
        );
        assert!(more_aborts.await.is_err(), "a 7th abort must wait");
        let fresh =
            tokio::time::timeout(Duration::from_millis(50), slots.take(get(&store, "fresh")));
        assert!(
            fresh.await.is_ok_and(|h| h.is_some()),
            "a normal pass must not wait"
        );
        drop(held.pop());
        let next = tokio::time::timeout(
            Duration::from_millis(50),
            slots.take(get(&store, &names[6])),
        );
        assert!(
            next.await.is_ok_and(|h| h.is_some()),
            "a freed abort slot is taken"
        );
    }

    #[tokio::test]
    async fn a_closed_queue_or_a_vanished_engine_gives_no_slot() {
        let store = cached(&[("a", false)]);
        let slots = Slots::new(4, cached(&[]));
        assert!(
            slots.take(get(&store, "a")).await.is_none(),
            "not in the cache"
        );
        let slots = Slots::new(4, store.clone());
        slots.close();
        assert!(slots.take(get(&store, "a")).await.is_none(), "closed");
    }

    #[test]
    fn aborts_leave_a_quarter_of_the_slots() {
        assert_eq!(reserve(1), 0);
        assert_eq!(reserve(2), 1);
        assert_eq!(reserve(32), 8);
    }
}

//! The kube-runtime machinery both reconcilers share: the engine controller
//! (src/controller/run.rs, src/controller/reconcile.rs) and the ChaosSchedule reconciler
//! (src/scheduler/mod.rs). Each of them keeps only what differs: what a pass does, its metrics,
//! its log lines.
//!
//! - the API of the watched scope, the reference of a watched object that may not deserialize,
//!   and what a Warning about such an object is attached to;
//! - [`guarded_pass`]: a malformed object goes to its handler, a readable one is reconciled in its
//!   span, and success clears its failure count;
//! - [`Failures`] and [`retry_delay`]: the per-object capped backoff kube-runtime does not keep;
//! - [`Written`]: our last write per object, so a pass on a cache that has not seen it yet waits;
//! - [`stop_signal`] and [`wait_synced`]: the shared shutdown signal and the bounded wait for a
//!   cache's first list.
use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube::api::Api;
use kube::core::DeserializeGuard;
use kube::core::error_boundary::InvalidObject;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use kube::{Client, Resource};
use tracing::{Instrument, Span};

use super::error::Error;

/// The namespaced API of `K`, or all namespaces when `ns` is `None`.
pub(crate) fn api_for<K>(client: &Client, ns: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
    K::DynamicType: Default,
{
    match ns {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// The reference of a watched object, whether or not it deserialized.
pub(crate) fn guard_ref<K>(obj: &DeserializeGuard<K>) -> ObjectRef<K>
where
    K: Resource<DynamicType = ()>,
{
    let meta = match &obj.0 {
        Ok(o) => o.meta(),
        Err(invalid) => &invalid.metadata,
    };
    let mut r = ObjectRef::new(meta.name.as_deref().unwrap_or_default());
    if let Some(ns) = &meta.namespace {
        r = r.within(ns);
    }
    r
}

/// One reconcile of a watched object: an object that does not deserialize goes to `malformed`
/// (the others go on); a readable one is reconciled by `pass` inside its `span`, and a pass that
/// succeeds clears the object's failure count (its backoff starts over).
pub(crate) async fn guarded_pass<K>(
    obj: &DeserializeGuard<K>,
    failures: &Failures<K>,
    malformed: impl AsyncFnOnce(&InvalidObject) -> Result<Action, Error>,
    span: impl FnOnce(&K) -> Span,
    pass: impl AsyncFnOnce(&K) -> Result<Action, Error>,
) -> Result<Action, Error>
where
    K: Resource<DynamicType = ()>,
{
    let key = guard_ref(obj);
    let object = match &obj.0 {
        Ok(object) => object,
        Err(invalid) => return malformed(invalid).await,
    };
    let outcome = pass(object).instrument(span(object)).await;
    if outcome.is_ok() {
        failures.clear(&key);
    }
    outcome
}

/// What a Warning about an object that does not deserialize is attached to: a stand-in made by
/// `new` from its name (the default spec) carrying its metadata, and the Events API of its
/// namespace (`default` when it names none).
pub(crate) fn malformed_subject<K: Resource>(
    client: &Client,
    invalid: &InvalidObject,
    new: impl FnOnce(&str) -> K,
) -> (K, Api<Event>) {
    let mut object = new(invalid.metadata.name.as_deref().unwrap_or_default());
    *object.meta_mut() = invalid.metadata.clone();
    let api = Api::namespaced(
        client.clone(),
        invalid.metadata.namespace.as_deref().unwrap_or("default"),
    );
    (object, api)
}

/// Consecutive failures per object, for the capped exponential backoff.
pub struct Failures<K: Resource>(Mutex<HashMap<ObjectRef<K>, u32>>);

impl<K: Resource> Default for Failures<K> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K> Failures<K>
where
    K: Resource<DynamicType = ()>,
{
    /// Counts one more failure of `key`; returns how many in a row (1 when the count is unreadable).
    pub fn record(&self, key: &ObjectRef<K>) -> u32 {
        self.0
            .lock()
            .map(|mut f| {
                let n = f.entry(key.clone()).or_insert(0);
                *n += 1;
                *n
            })
            .unwrap_or(1)
    }

    /// Forgets the failures of `key` (it succeeded).
    pub fn clear(&self, key: &ObjectRef<K>) {
        if let Ok(mut f) = self.0.lock() {
            f.remove(key);
        }
    }
}

/// The wait before retrying after `failures` consecutive errors: a conflict (someone wrote since
/// the pass read) is retried after 100 ms; anything else backs off from 0.5 s, doubling, up to
/// `max`.
pub fn retry_delay(error: &Error, failures: u32, max: Duration) -> Duration {
    if error.category() == "conflict" {
        return Duration::from_millis(100);
    }
    let factor = 2u32.saturating_pow(failures.min(16));
    Duration::from_millis(500).saturating_mul(factor).min(max)
}

/// The resourceVersion of our last write per object: a pass triggered before the watch delivered
/// that write must not plan on the older cached version (it would redo work and fail the write
/// precondition). resourceVersions are opaque in general but etcd revisions in practice; when
/// either does not parse, the cache is trusted.
pub struct Written<K: Resource>(Mutex<HashMap<ObjectRef<K>, u64>>);

impl<K: Resource> Default for Written<K> {
    fn default() -> Self {
        Self(Mutex::new(HashMap::new()))
    }
}

impl<K> Written<K>
where
    K: Resource<DynamicType = ()>,
{
    /// Records `rv` as our last write to `obj` (none, or one that does not parse: nothing to
    /// compare with, so nothing is recorded).
    pub fn remember(&self, obj: &K, rv: Option<&str>) {
        if let (Some(rv), Ok(mut written)) = (rv.and_then(|v| v.parse::<u64>().ok()), self.0.lock())
        {
            written.insert(ObjectRef::from_obj(obj), rv);
        }
    }

    /// Whether the cached `obj` is older than our last write to it. Once it is not, the record is
    /// dropped: the cache has caught up.
    pub fn behind(&self, obj: &K) -> bool {
        let key = ObjectRef::from_obj(obj);
        let Ok(mut written) = self.0.lock() else {
            return false;
        };
        let Some(ours) = written.get(&key).copied() else {
            return false;
        };
        let seen = obj
            .meta()
            .resource_version
            .as_deref()
            .and_then(|v| v.parse::<u64>().ok());
        match seen {
            Some(seen) if seen < ours => true,
            _ => {
                written.remove(&key);
                false
            }
        }
    }

    /// Drops the record of `obj` (it is gone).
    pub fn forget(&self, obj: &K) {
        if let Ok(mut written) = self.0.lock() {
            written.remove(&ObjectRef::from_obj(obj));
        }
    }
}

/// The shutdown signal, shared: the Controller drains on it, and a bounded wait after it returns
/// even if a reconcile cannot finish (the process must not outlive SIGTERM by much).
pub fn stop_signal(
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::sync::watch::Receiver<bool> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    stop_rx
}

/// Resolves once the shutdown signal of [`stop_signal`] was given.
pub async fn stop_requested(mut rx: tokio::sync::watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Longest a reconcile waits for its caches' first list.
pub const CACHE_SYNC_WAIT: Duration = Duration::from_secs(30);

/// Waits until `ready` holds for the caches' sync state. A pass on half-filled caches would call
/// a running child "vanished"; bounded by [`CACHE_SYNC_WAIT`], so a cache that cannot sync (a
/// forbidden list) ends in an error and a backoff (`not_listed` says which watches), not in a
/// reconcile that blocks graceful shutdown forever.
pub async fn wait_synced<T>(
    synced: &tokio::sync::watch::Receiver<T>,
    ready: impl FnMut(&T) -> bool,
    not_listed: &str,
) -> Result<(), Error> {
    let mut synced = synced.clone();
    tokio::time::timeout(CACHE_SYNC_WAIT, synced.wait_for(ready))
        .await
        .map_err(|_| Error::CacheNotReady(not_listed.into()))?
        .map_err(|e| Error::CacheNotReady(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ChaosEngine;

    fn engine(rv: Option<&str>) -> ChaosEngine {
        let mut e = ChaosEngine::new("e", Default::default());
        e.metadata.namespace = Some("ns".into());
        e.metadata.resource_version = rv.map(Into::into);
        e
    }

    #[test]
    fn the_backoff_doubles_to_its_cap_and_a_conflict_retries_soon() {
        let max = Duration::from_secs(300);
        let other = Error::CacheNotReady("x".into());
        assert_eq!(retry_delay(&other, 1, max), Duration::from_secs(1));
        assert_eq!(retry_delay(&other, 3, max), Duration::from_secs(4));
        assert_eq!(retry_delay(&other, 40, max), max);
        let conflict = Error::Kube {
            action: "writing",
            source: kube::Error::Api(
                kube::core::Status {
                    code: 409,
                    ..Default::default()
                }
                .boxed(),
            ),
        };
        assert_eq!(retry_delay(&conflict, 9, max), Duration::from_millis(100));
    }

    #[test]
    fn failures_count_per_object_until_cleared() {
        let failures = Failures::<ChaosEngine>::default();
        let key = ObjectRef::from_obj(&engine(None));
        let other = ObjectRef::new("other").within("ns");
        assert_eq!(failures.record(&key), 1);
        assert_eq!(failures.record(&key), 2);
        assert_eq!(failures.record(&other), 1);
        failures.clear(&key);
        assert_eq!(failures.record(&key), 1);
    }

    #[test]
    fn a_cache_older_than_our_write_is_behind_until_it_catches_up() {
        let written = Written::<ChaosEngine>::default();
        assert!(!written.behind(&engine(Some("5"))), "nothing written yet");
        written.remember(&engine(Some("5")), Some("10"));
        assert!(written.behind(&engine(Some("9"))));
        assert!(!written.behind(&engine(Some("10"))));
        // Caught up: the record is gone, an older version is trusted again.
        assert!(!written.behind(&engine(Some("9"))));
        // A version that does not parse is not recorded, and an unparseable cache is trusted.
        written.remember(&engine(None), Some("abc"));
        assert!(!written.behind(&engine(Some("1"))));
        written.remember(&engine(None), Some("10"));
        assert!(!written.behind(&engine(Some("opaque"))));
        written.remember(&engine(None), Some("10"));
        written.forget(&engine(None));
        assert!(!written.behind(&engine(Some("1"))));
    }
}

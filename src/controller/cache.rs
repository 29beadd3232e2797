//! The caches of the chaos-side objects (Jobs, pods, ChaosResults), filed by the engine they
//! belong to: the `chaosUID` label (src/engine/job/mod.rs). A reconcile reads one engine's
//! objects in O(its own objects) instead of scanning every cached object of every engine
//! (kube-runtime's reflector `Store` has no index), which made one pass over all engines
//! O(engines²) at a restart (BENCHMARKS.md, "Restart at 5,000").
//!
//! Fed by the same watch events a reflector would apply, with the same relist semantics: the
//! objects of a relist (`Init` … `InitApply` … `InitDone`) replace the cache at once at `InitDone`,
//! so a reader never sees a half-listed cache, and an object deleted while the watch was down is
//! gone after the relist.
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use kube::ResourceExt;
use kube::runtime::watcher::Event;

use crate::engine::job::CHAOS_UID_LABEL;

/// (namespace, name): what identifies a cached object of one kind.
type Key = (String, String);

struct Index<K> {
    /// chaosUID → the objects labelled with it.
    by_uid: HashMap<String, HashMap<Key, Arc<K>>>,
    /// The chaosUID each object is filed under, so a relabelled or deleted object is found.
    uid_of: HashMap<Key, String>,
}

impl<K> Default for Index<K> {
    fn default() -> Self {
        Self {
            by_uid: HashMap::new(),
            uid_of: HashMap::new(),
        }
    }
}

impl<K: ResourceExt + Clone> Index<K> {
    fn remove(&mut self, key: &Key) {
        if let Some(uid) = self.uid_of.remove(key)
            && let Some(bucket) = self.by_uid.get_mut(&uid)
        {
            bucket.remove(key);
            if bucket.is_empty() {
                self.by_uid.remove(&uid);
            }
        }
    }

    fn insert(&mut self, obj: &K) {
        let key = key_of(obj);
        self.remove(&key);
        // The watches select on the label's existence; an object without it is not ours to file.
        let Some(uid) = obj.labels().get(CHAOS_UID_LABEL).cloned() else {
            return;
        };
        self.by_uid
            .entry(uid.clone())
            .or_default()
            .insert(key.clone(), Arc::new(obj.clone()));
        self.uid_of.insert(key, uid);
    }
}

fn key_of<K: ResourceExt>(obj: &K) -> Key {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

/// Read side of a cache; cheap to clone.
pub struct ChaosCache<K> {
    live: Arc<RwLock<Index<K>>>,
}

impl<K> Clone for ChaosCache<K> {
    fn clone(&self) -> Self {
        Self {
            live: self.live.clone(),
        }
    }
}

impl<K: ResourceExt> ChaosCache<K> {
    /// The objects in `namespace` labelled `chaosUID=<uid>`.
    pub fn of(&self, namespace: &str, uid: &str) -> Vec<Arc<K>> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that matters
        // here (each update is a whole insert or remove), so a poisoned lock is still read.
        let live = self.live.read().unwrap_or_else(PoisonError::into_inner);
        live.by_uid
            .get(uid)
            .into_iter()
            .flat_map(|bucket| bucket.iter())
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, obj)| obj.clone())
            .collect()
    }

    /// Every cached object (the /metrics refresh reads all ChaosResults).
    pub fn all(&self) -> Vec<Arc<K>> {
        let live = self.live.read().unwrap_or_else(PoisonError::into_inner);
        live.by_uid
            .values()
            .flat_map(|bucket| bucket.values().cloned())
            .collect()
    }
}

/// Write side of a cache: applies the watch events, in order.
pub struct CacheWriter<K> {
    live: Arc<RwLock<Index<K>>>,
    /// The relist in progress, swapped in at `InitDone`.
    relist: Option<Index<K>>,
}

impl<K: ResourceExt + Clone> CacheWriter<K> {
    pub fn apply(&mut self, event: &Event<K>) {
        match event {
            Event::Init => self.relist = Some(Index::default()),
            Event::InitApply(obj) => match self.relist.as_mut() {
                Some(relist) => relist.insert(obj),
                None => self.write().insert(obj),
            },
            Event::InitDone => {
                if let Some(relist) = self.relist.take() {
                    *self.write() = relist;
                }
            }
            Event::Apply(obj) => self.write().insert(obj),
            Event::Delete(obj) => self.write().remove(&key_of(obj)),
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Index<K>> {
        self.live.write().unwrap_or_else(PoisonError::into_inner)
    }
}

/// An empty cache and its writer.
pub fn cache<K>() -> (ChaosCache<K>, CacheWriter<K>) {
    let live = Arc::new(RwLock::new(Index::default()));
    (
        ChaosCache { live: live.clone() },
        CacheWriter { live, relist: None },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::ObjectMeta;

    fn pod(ns: &str, name: &str, uid: Option<&str>) -> Pod {
        Pod {
            metadata: ObjectMeta {
                namespace: Some(ns.into()),
                name: Some(name.into()),
                labels: uid.map(|u| [(CHAOS_UID_LABEL.to_string(), u.to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn names(v: Vec<Arc<Pod>>) -> Vec<String> {
        let mut n: Vec<String> = v.iter().map(|p| p.name_any()).collect();
        n.sort();
        n
    }

    #[test]
    fn files_objects_by_chaos_uid_and_namespace() {
        let (c, mut w) = cache();
        w.apply(&Event::Apply(pod("a", "p1", Some("u1"))));
        w.apply(&Event::Apply(pod("a", "p2", Some("u1"))));
        w.apply(&Event::Apply(pod("b", "p3", Some("u1"))));
        w.apply(&Event::Apply(pod("a", "p4", Some("u2"))));
        w.apply(&Event::Apply(pod("a", "p5", None)));
        assert_eq!(names(c.of("a", "u1")), ["p1", "p2"]);
        assert_eq!(names(c.of("b", "u1")), ["p3"]);
        assert_eq!(names(c.of("a", "u2")), ["p4"]);
        assert!(c.of("a", "u3").is_empty());
        assert_eq!(c.all().len(), 4);
    }

    #[test]
    fn relabel_and_delete_move_and_drop_the_object() {
        let (c, mut w) = cache();
        w.apply(&Event::Apply(pod("a", "p1", Some("u1"))));
        w.apply(&Event::Apply(pod("a", "p1", Some("u2"))));
        assert!(c.of("a", "u1").is_empty());
        assert_eq!(names(c.of("a", "u2")), ["p1"]);
        w.apply(&Event::Delete(pod("a", "p1", Some("u2"))));
        assert!(c.of("a", "u2").is_empty());
        assert!(c.all().is_empty());
    }

    #[test]
    fn a_relist_replaces_the_cache_only_when_done() {
        let (c, mut w) = cache();
        w.apply(&Event::Apply(pod("a", "gone", Some("u1"))));
        w.apply(&Event::Apply(pod("a", "kept", Some("u1"))));
        w.apply(&Event::Init);
        w.apply(&Event::InitApply(pod("a", "kept", Some("u1"))));
        w.apply(&Event::InitApply(pod("a", "new", Some("u1"))));
        // Until the relist is complete the readers see the old cache, whole.
        assert_eq!(names(c.of("a", "u1")), ["gone", "kept"]);
        w.apply(&Event::InitDone);
        assert_eq!(names(c.of("a", "u1")), ["kept", "new"]);
    }
}

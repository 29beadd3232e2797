//! Watches that record what existed at any moment of a test, not just at the end: a Job that was
//! created and deleted between two polls is still counted.
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use tokio::task::JoinHandle;

#[derive(Default)]
struct Seen {
    /// chaosUID label -> Job uid -> Job name.
    by_engine: BTreeMap<String, BTreeMap<String, String>>,
    synced: bool,
}

/// Every chaos Job (label `chaosUID`) ever seen in a namespace, by engine UID.
pub struct JobUids {
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

impl JobUids {
    /// Starts watching; returns once the initial list is in (so no Job created later is missed).
    pub async fn start(client: Client, namespace: &str) -> JobUids {
        let api: Api<Job> = Api::namespaced(client, namespace);
        let seen = Arc::new(Mutex::new(Seen::default()));
        let s = seen.clone();
        let task = tokio::spawn(async move {
            let cfg = watcher::Config::default().labels("chaosUID");
            let mut stream = watcher(api, cfg).boxed();
            while let Some(ev) = stream.next().await {
                let mut seen = s.lock().unwrap();
                match ev {
                    Ok(watcher::Event::Apply(job) | watcher::Event::InitApply(job))
                    | Ok(watcher::Event::Delete(job)) => {
                        let engine = job.labels().get("chaosUID").cloned().unwrap_or_default();
                        if let Some(uid) = job.uid() {
                            seen.by_engine
                                .entry(engine)
                                .or_default()
                                .insert(uid, job.name_any());
                        }
                    }
                    Ok(watcher::Event::InitDone) => seen.synced = true,
                    Ok(watcher::Event::Init) => {}
                    Err(e) => eprintln!("[job-watch] {e}"),
                }
            }
        });
        let w = JobUids { seen, task };
        let start = std::time::Instant::now();
        while !w.seen.lock().unwrap().synced {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "Job watch did not sync in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        w
    }

    /// chaosUID -> the names of the distinct Jobs (by uid) seen for it.
    pub fn by_engine(&self) -> BTreeMap<String, Vec<String>> {
        self.seen
            .lock()
            .unwrap()
            .by_engine
            .iter()
            .map(|(k, v)| (k.clone(), v.values().cloned().collect()))
            .collect()
    }

    /// Jobs beyond `expected(chaosUID)` per engine, summed, with the offenders listed.
    pub fn duplicates(&self, expected: impl Fn(&str) -> usize) -> (usize, Vec<String>) {
        let mut n = 0;
        let mut detail = Vec::new();
        for (engine, jobs) in self.by_engine() {
            let want = expected(&engine);
            if jobs.len() > want {
                n += jobs.len() - want;
                detail.push(format!(
                    "{engine}: {} Jobs for {want} runs: {jobs:?}",
                    jobs.len()
                ));
            }
        }
        (n, detail)
    }

    /// All distinct Job uids seen.
    pub fn total(&self) -> usize {
        self.seen
            .lock()
            .unwrap()
            .by_engine
            .values()
            .map(BTreeMap::len)
            .sum()
    }
}

impl Drop for JobUids {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Every version of one ChaosEngine the API server stored, from a raw watch opened before the
/// engine exists: each write that changed the object is exactly one event (a watch from a
/// resourceVersion skips none; kube-runtime's watcher could re-list and merge versions).
pub struct EngineVersions {
    seen: Arc<Mutex<Vec<chaos_conductor::api::ChaosEngine>>>,
    task: JoinHandle<()>,
}

impl EngineVersions {
    /// Opens the watch on `name` in `namespace` and returns once it is established.
    pub async fn start(client: Client, namespace: &str, name: &str) -> EngineVersions {
        use kube::api::{ListParams, WatchEvent, WatchParams};
        let api: Api<chaos_conductor::api::ChaosEngine> = Api::namespaced(client, namespace);
        let field = format!("metadata.name={name}");
        let rv = api
            .list_metadata(&ListParams::default().fields(&field))
            .await
            .expect("list engines")
            .metadata
            .resource_version
            .unwrap_or_default();
        let stream = api
            .watch(&WatchParams::default().fields(&field).timeout(290), &rv)
            .await
            .expect("watch the engine");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = stream.boxed();
            while let Some(ev) = stream.next().await {
                match ev {
                    Ok(WatchEvent::Added(e) | WatchEvent::Modified(e)) => s.lock().unwrap().push(e),
                    Ok(_) => {}
                    Err(e) => eprintln!("[engine-watch] {e}"),
                }
            }
        });
        EngineVersions { seen, task }
    }

    /// The versions seen so far, oldest first (the first is the creation).
    pub fn versions(&self) -> Vec<chaos_conductor::api::ChaosEngine> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for EngineVersions {
    fn drop(&mut self) {
        self.task.abort();
    }
}

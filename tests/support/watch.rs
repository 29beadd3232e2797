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

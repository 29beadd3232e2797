//! The kill switch's watches: the cluster ConfigMap and the Namespace annotations feed
//! [`HaltState`], and what each object says.
use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt, watcher};
use tracing::warn;

use super::{
    Engaged, HALTED_KEY, HaltState, NAMESPACE_ANNOTATION, NAMESPACE_REASON_ANNOTATION, REASON_KEY,
    SwitchRef,
};

/// The cluster switch's state from its ConfigMap (`None` when absent or not `halted: "true"`).
pub fn from_config_map(switch: &SwitchRef, cm: Option<&ConfigMap>) -> Option<Engaged> {
    let data = cm?.data.as_ref()?;
    (data.get(HALTED_KEY).map(|v| v.trim()) == Some("true")).then(|| Engaged {
        switch: format!("ConfigMap {switch}"),
        reason: data.get(REASON_KEY).cloned().unwrap_or_default(),
    })
}

/// A namespace's switch from its annotations.
pub fn from_namespace(meta: &kube::api::ObjectMeta) -> Option<Engaged> {
    let annotations = meta.annotations.as_ref()?;
    (annotations.get(NAMESPACE_ANNOTATION).map(|v| v.trim()) == Some("true")).then(|| Engaged {
        switch: format!(
            "Namespace {} annotation {NAMESPACE_ANNOTATION}",
            meta.name.as_deref().unwrap_or_default()
        ),
        reason: annotations
            .get(NAMESPACE_REASON_ANNOTATION)
            .cloned()
            .unwrap_or_default(),
    })
}

/// Feeds `state` from the ConfigMap and Namespace watches until the process ends.
pub fn spawn_watches(
    client: &Client,
    state: &Arc<HaltState>,
    switch: Option<SwitchRef>,
    namespace_watch: bool,
) {
    if let Some(switch) = switch {
        let api: Api<ConfigMap> = Api::namespaced(client.clone(), &switch.namespace);
        let config = watcher::Config::default().fields(&format!("metadata.name={}", switch.name));
        let state = state.clone();
        tokio::spawn(async move {
            let mut seen: Option<ConfigMap> = None;
            let mut events = watcher(api, config).default_backoff().boxed();
            while let Some(ev) = events.next().await {
                match ev {
                    Ok(watcher::Event::Init) => seen = None,
                    Ok(watcher::Event::InitApply(cm)) => seen = Some(cm),
                    Ok(watcher::Event::InitDone) => {
                        state.set_cluster(from_config_map(&switch, seen.as_ref()));
                    }
                    Ok(watcher::Event::Apply(cm)) => {
                        state.set_cluster(from_config_map(&switch, Some(&cm)));
                    }
                    Ok(watcher::Event::Delete(_)) => {
                        warn!(%switch, "kill switch ConfigMap deleted: treated as released");
                        state.set_cluster(None);
                    }
                    Err(e) => warn!(%switch, error = %e, "watching the kill switch ConfigMap"),
                }
            }
        });
    }
    if namespace_watch {
        let api: Api<PartialObjectMeta<Namespace>> = Api::all(client.clone());
        let state = state.clone();
        tokio::spawn(async move {
            let mut current: BTreeMap<String, Engaged> = BTreeMap::new();
            let mut initial: BTreeMap<String, Engaged> = BTreeMap::new();
            let mut events = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(ev) = events.next().await {
                match ev {
                    Ok(watcher::Event::Init) => initial.clear(),
                    Ok(watcher::Event::InitApply(ns)) => {
                        if let Some(e) = from_namespace(&ns.metadata) {
                            initial.insert(ns.metadata.name.clone().unwrap_or_default(), e);
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        current = std::mem::take(&mut initial);
                        state.set_namespaces(current.clone());
                    }
                    Ok(watcher::Event::Apply(ns)) => {
                        let name = ns.metadata.name.clone().unwrap_or_default();
                        let before = current.get(&name).cloned();
                        let now = from_namespace(&ns.metadata);
                        if before != now {
                            match now {
                                Some(e) => current.insert(name, e),
                                None => current.remove(&name),
                            };
                            state.set_namespaces(current.clone());
                        }
                    }
                    Ok(watcher::Event::Delete(ns)) => {
                        let name = ns.metadata.name.clone().unwrap_or_default();
                        if current.remove(&name).is_some() {
                            state.set_namespaces(current.clone());
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "watching Namespaces for the kill switch annotation")
                    }
                }
            }
        });
    }
}

//! The engines a schedule owns, by ownerReference: Litmus's "refresh active" and our
//! `historyLimit`.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{Builder, Child, reference};

impl Builder<'_> {
    /// Litmus's "refresh active", by ownerReference: finished and vanished engines leave
    /// `active`; unfinished owned engines missing from it are adopted.
    pub(super) fn refresh_active(&mut self) {
        let children = self.obs.children;
        let old = std::mem::take(&mut self.status.active);
        for entry in &old {
            let name = entry.name.clone().unwrap_or_default();
            match children
                .iter()
                .find(|c| Some(c.uid.as_str()) == entry.uid.as_deref())
            {
                Some(c) if c.finished() => self.event(
                    false,
                    "SawCompletedEngine",
                    format!("Saw completed engine: {name}, status: {}", c.engine_status),
                ),
                Some(_) => {}
                None => {
                    self.event(
                        false,
                        "MissingEngine",
                        format!("Active engine went missing: {name}"),
                    );
                    self.status.last_schedule_completion_time = Some(Time(self.now));
                }
            }
        }
        let mut active: Vec<&Child> = children.iter().filter(|c| !c.finished()).collect();
        active.sort_by(|a, b| a.name.cmp(&b.name));
        self.status.active = active
            .into_iter()
            .map(|c| {
                // Litmus keeps the resourceVersion seen at creation; so do we.
                let rv = old
                    .iter()
                    .find(|e| e.uid.as_deref() == Some(c.uid.as_str()))
                    .and_then(|e| e.resource_version.clone())
                    .or_else(|| c.resource_version.clone());
                reference(self.obs.schedule, &c.name, Some(&c.uid), rv.as_deref())
            })
            .collect();
    }

    /// Our extension `historyLimit`: the oldest finished engines beyond the limit are deleted.
    pub(super) fn history_limit(&mut self) {
        let Some(limit) = self.obs.schedule.spec.history_limit else {
            return;
        };
        let limit = usize::try_from(limit.max(0)).unwrap_or(0);
        let mut finished: Vec<&Child> = self
            .obs
            .children
            .iter()
            .filter(|c| c.finished() && !c.deleting)
            .collect();
        if finished.len() <= limit {
            return;
        }
        finished.sort_by(|a, b| a.created.cmp(&b.created).then(a.name.cmp(&b.name)));
        let excess = finished.len() - limit;
        self.pass.delete = finished[..excess].iter().map(|c| c.name.clone()).collect();
    }
}

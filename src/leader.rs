//! Leader election on a coordination.k8s.io Lease: with several replicas only the holder runs the
//! controller; the others stand by (ready) and take over when the Lease expires or is released.
//!
//! Written here rather than taken from a crate because every write of the controller is fenced on
//! the time of the last *successful* renewal (see [`crate::fence`]), which the Lease crates do not
//! expose. The protocol is client-go's: the holder renews `spec.renewTime` with a resourceVersion
//! precondition; a candidate takes the Lease when it is free or when it saw no renewal for a Lease
//! duration on its own monotonic clock (never by comparing wall clocks across machines).
use std::future::Future;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use tracing::{debug, info, warn};

use crate::controller::{self, run::Parts};
use crate::fence::Fence;

/// Where and how long the Lease is held.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (the pod name in a cluster).
    pub identity: String,
    /// Seconds a Lease stays valid after its last renewal: the longest a dead leader blocks takeover.
    pub duration_seconds: u64,
    /// Seconds before expiry by which the holder must have renewed; writes stop this long before
    /// the Lease could expire (the fence margin).
    pub grace_seconds: u64,
}

impl LeaseSettings {
    fn duration(&self) -> Duration {
        Duration::from_secs(self.duration_seconds.max(1))
    }

    /// How often the holder renews, and a candidate looks again: a third of the margin, so a
    /// renewal can fail twice and still land before the fence closes.
    fn retry(&self) -> Duration {
        (self.margin() / 3).max(Duration::from_millis(200))
    }

    fn margin(&self) -> Duration {
        Duration::from_secs(self.grace_seconds.max(1)).min(self.duration() / 2)
    }

    /// The write fence for this Lease.
    pub fn fence(&self) -> Fence {
        Fence::for_lease(self.duration(), self.margin())
    }
}

/// Why leading stopped.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election failed: {0}")]
    Lease(#[from] kube::Error),
    #[error("lost the Lease while leading; exiting so a fresh start stands by")]
    Lost,
    #[error(transparent)]
    Controller(#[from] controller::Error),
}

/// What a candidate remembers of the Lease it last read: the record, and when it changed.
struct Observation {
    holder: Option<String>,
    renew_time: Option<Timestamp>,
    resource_version: Option<String>,
    seen_at: Instant,
}

/// One candidate or holder of the Lease.
struct Elector {
    api: Api<Lease>,
    lease: LeaseSettings,
    fence: Fence,
    observed: Option<Observation>,
    /// The Lease as we last wrote it (holder only), for the next renewal's precondition.
    ours: Option<Lease>,
}

fn holder(l: &Lease) -> Option<String> {
    l.spec
        .as_ref()
        .and_then(|s| s.holder_identity.clone())
        .filter(|h| !h.is_empty())
}

impl Elector {
    fn spec(&self, previous: Option<&LeaseSpec>, now: Timestamp) -> LeaseSpec {
        let same_holder = previous
            .and_then(|p| p.holder_identity.as_deref())
            .is_some_and(|h| h == self.lease.identity);
        let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.lease.identity.clone()),
            lease_duration_seconds: i32::try_from(self.lease.duration_seconds).ok(),
            acquire_time: if same_holder {
                previous.and_then(|p| p.acquire_time.clone())
            } else {
                Some(MicroTime(now))
            },
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if same_holder {
                transitions
            } else {
                transitions + 1
            }),
            ..Default::default()
        }
    }

    /// The token of the leadership `written` records (crate::fence::LEADER_ANNOTATION). Each
    /// takeover raises `leaseTransitions`, so a past leadership's token never matches again.
    fn token(&self, written: &Lease) -> String {
        let transitions = written
            .spec
            .as_ref()
            .and_then(|s| s.lease_transitions)
            .unwrap_or(0);
        format!(
            "{}/{}/{}/{transitions}",
            self.lease.namespace, self.lease.name, self.lease.identity
        )
    }

    /// Remembers `l`; the observation time moves only when the record changed.
    fn observe(&mut self, l: &Lease) {
        let holder = holder(l);
        let renew_time = l
            .spec
            .as_ref()
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0);
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|o| o.holder != holder || o.renew_time != renew_time);
        if changed {
            self.observed = Some(Observation {
                holder,
                renew_time,
                resource_version: l.metadata.resource_version.clone(),
                seen_at: Instant::now(),
            });
        } else if let Some(o) = self.observed.as_mut() {
            o.resource_version = l.metadata.resource_version.clone();
        }
    }

    /// One attempt to acquire (or keep) the Lease. `Ok(true)` when we hold it now.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let sent = Instant::now();
        let now = Timestamp::now();
        let name = self.lease.name.clone();
        let current = match &self.ours {
            Some(l) => l.clone(),
            None => match self.api.get_opt(&name).await? {
                Some(l) => l,
                None => {
                    let lease = Lease {
                        metadata: ObjectMeta {
                            name: Some(name.clone()),
                            namespace: Some(self.lease.namespace.clone()),
                            ..Default::default()
                        },
                        spec: Some(self.spec(None, now)),
                    };
                    return match self.api.create(&PostParams::default(), &lease).await {
                        Ok(created) => {
                            self.won(created, sent);
                            Ok(true)
                        }
                        Err(kube::Error::Api(ae)) if ae.code == 409 => Ok(false),
                        Err(e) => Err(e),
                    };
                }
            },
        };
        self.observe(&current);
        let held_by_other = holder(&current).filter(|h| *h != self.lease.identity);
        if held_by_other.is_some() {
            let expired = self
                .observed
                .as_ref()
                .is_some_and(|o| o.seen_at.elapsed() >= self.lease.duration());
            if !expired {
                return Ok(false);
            }
            debug!(holder = ?held_by_other, "the Lease expired without renewal: taking it");
        }
        let mut next = current.clone();
        next.spec = Some(self.spec(current.spec.as_ref(), now));
        next.metadata.managed_fields = None;
        // The resourceVersion in the body is the precondition: a concurrent writer makes this fail.
        match self.api.replace(&name, &PostParams::default(), &next).await {
            Ok(written) => {
                self.won(written, sent);
                Ok(true)
            }
            Err(kube::Error::Api(ae)) if ae.code == 409 => {
                // Someone else wrote it: read it again next time.
                self.ours = None;
                Ok(false)
            }
            Err(e) => {
                self.ours = None;
                Err(e)
            }
        }
    }

    fn won(&mut self, written: Lease, sent: Instant) {
        // Set before the fence opens, so that no write of this leadership goes without it.
        self.fence.set_token(self.token(&written), sent);
        self.fence.renewed(sent);
        self.observe(&written);
        self.ours = Some(written);
    }

    /// Gives the Lease up (holder cleared), so a standby takes over at once.
    async fn release(&mut self) -> Result<(), kube::Error> {
        self.fence.close();
        let Some(mut l) = self.ours.take() else {
            return Ok(());
        };
        if let Some(spec) = l.spec.as_mut() {
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
        }
        l.metadata.managed_fields = None;
        let name = self.lease.name.clone();
        self.api.replace(&name, &PostParams::default(), &l).await?;
        Ok(())
    }
}

/// Runs the controller while this replica holds the Lease, until `shutdown` resolves.
pub async fn run_when_leading(
    mut parts: Parts,
    lease: LeaseSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LeaderError> {
    let fence = lease.fence();
    parts.settings.fence = fence.clone();
    let health = parts.health.clone();
    let mut elector = Elector {
        api: Api::namespaced(parts.client.clone(), &lease.namespace),
        lease: lease.clone(),
        fence: fence.clone(),
        observed: None,
        ours: None,
    };
    health.standby.store(true, Ordering::Relaxed);
    info!(lease = %lease.name, identity = %lease.identity, "standing by for leadership");
    let mut shutdown = Box::pin(shutdown);
    loop {
        match elector.try_acquire_or_renew().await {
            Ok(true) => break,
            Ok(false) => {}
            Err(e) => warn!(error = %e, "could not read or take the Lease"),
        }
        tokio::select! {
            () = tokio::time::sleep(lease.retry()) => {}
            () = &mut shutdown => return Ok(()),
        }
    }
    health.standby.store(false, Ordering::Relaxed);
    info!(identity = %lease.identity, "leading: starting the controller");

    // The renewal loop: it ends (and stops the controller) on shutdown or when the fence closed
    // without a successful renewal, i.e. another replica may already lead.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let renewals = tokio::spawn(async move {
        let lost = loop {
            tokio::select! {
                () = tokio::time::sleep(lease.retry()) => {}
                () = &mut shutdown => break false,
            }
            match elector.try_acquire_or_renew().await {
                Ok(true) => continue,
                Ok(false) => {
                    warn!("another replica holds the Lease");
                    break true;
                }
                Err(e) => warn!(error = %e, "could not renew the Lease"),
            }
            if elector.fence.check().is_err() {
                break true;
            }
        };
        elector.fence.close();
        let _ = stop_tx.send(true);
        (elector, lost)
    });
    let mut stopped = stop_rx;
    let trigger = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    crate::scheduler::run_all(parts, trigger).await?;
    let (mut elector, lost) = match renewals.await {
        Ok(done) => done,
        Err(e) => {
            warn!(error = %e, "lease task failed");
            return Err(LeaderError::Lost);
        }
    };
    if lost {
        return Err(LeaderError::Lost);
    }
    match elector.release().await {
        Ok(()) => info!("Lease released"),
        Err(e) => warn!(error = %e, "could not release the Lease"),
    }
    Ok(())
}

//! Leader election on a coordination.k8s.io Lease: with several replicas only the holder runs the
//! controller; the others stand by (ready) and take over when the Lease expires.
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tracing::{info, warn};

use crate::controller::{self, Settings};
use crate::metrics::Metrics;
use crate::server::Health;

/// Where and how long the Lease is held.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This replica's identity (the pod name in a cluster).
    pub identity: String,
    /// Seconds a Lease stays valid after its last renewal: the longest a dead leader blocks takeover.
    pub duration_seconds: u64,
    /// Seconds before expiry at which the holder renews.
    pub grace_seconds: u64,
}

/// Why leading stopped.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("leader election failed: {0}")]
    Lease(#[from] LeaseManagerError),
    #[error("lost the Lease while leading; exiting so a fresh start stands by")]
    Lost,
    #[error(transparent)]
    Controller(#[from] controller::Error),
}

/// Runs the controller while this replica holds the Lease, until `shutdown` resolves.
pub async fn run_when_leading(
    client: Client,
    settings: Settings,
    lease: LeaseSettings,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LeaderError> {
    let manager = LeaseManagerBuilder::new(client.clone(), &lease.name)
        .with_namespace(&lease.namespace)
        .with_identity(&lease.identity)
        .with_duration(lease.duration_seconds)
        .with_grace(lease.grace_seconds)
        .build()
        .await?;
    let (mut leading, task) = manager.watch().await;
    health.standby.store(true, Ordering::Relaxed);
    info!(lease = %lease.name, identity = %lease.identity, "standing by for leadership");
    let mut shutdown = Box::pin(shutdown);
    while !*leading.borrow_and_update() {
        tokio::select! {
            changed = leading.changed() => if changed.is_err() { break },
            () = &mut shutdown => {
                drop(leading);
                let _ = task.await;
                return Ok(());
            }
        }
    }
    if !*leading.borrow() {
        return Err(LeaderError::Lost);
    }
    health.standby.store(false, Ordering::Relaxed);
    info!(identity = %lease.identity, "leading: starting the controller");
    // Stop on SIGTERM, or when the Lease is lost (another replica may already be reconciling).
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<bool>();
    let watch_task = tokio::spawn(async move {
        let lost = async {
            while leading.changed().await.is_ok() {
                if !*leading.borrow() {
                    return;
                }
            }
        };
        let was_lost = tokio::select! {
            () = lost => true,
            () = &mut shutdown => false,
        };
        let _ = stop_tx.send(was_lost);
        // Dropping the receiver makes the lease task release the Lease.
        drop(leading);
    });
    let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
    let lost_flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = lost_flag.clone();
    tokio::spawn(async move {
        if let Ok(lost) = stop_rx.await {
            flag.store(lost, Ordering::Relaxed);
        }
        let _ = stopped_tx.send(true);
    });
    let mut stopped = stopped_rx;
    let trigger = async move {
        let _ = stopped.wait_for(|s| *s).await;
    };
    crate::scheduler::run_all(client, settings, metrics, health, trigger).await?;
    let _ = watch_task.await;
    match task.await {
        Ok(Ok(_)) => info!("Lease released"),
        Ok(Err(e)) => warn!(error = %e, "could not release the Lease"),
        Err(e) => warn!(error = %e, "lease task failed"),
    }
    if lost_flag.load(Ordering::Relaxed) {
        return Err(LeaderError::Lost);
    }
    Ok(())
}

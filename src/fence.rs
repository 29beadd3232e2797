//! The write fence of a leader: a replica may write only while it can prove, on its own monotonic
//! clock, that its Lease is still valid.
//!
//! A paused process (SIGSTOP, a long GC-like stall, a frozen VM) resumes believing it leads: its
//! renewal task has not run yet, but its reconciles may. Other replicas consider the Lease expired
//! once they saw no renewal for a Lease duration, measured from when *they* observed the last one,
//! which is after we sent it. So a write is safe only while less than the Lease duration (minus a
//! margin for clock-rate differences and request latency) has passed since the moment we *sent*
//! our last successful renewal. `Instant` is monotonic and keeps counting while the process is
//! stopped, so after SIGCONT the fence is closed until a renewal succeeds again.
//!
//! That check runs in this process, so a write it let through can still leave late: a leader
//! frozen between the check and the request's bytes (a token-bucket wait, a connection being
//! opened) sends the request after it resumes. For the one write that such a delay makes harmful,
//! creating an experiment Job under an idempotent name that the new leader may already have run
//! and deleted, the API server checks too: the Job carries this leadership's token
//! ([`LEADER_ANNOTATION`]) and the chart's leader-fence ValidatingAdmissionPolicy refuses it
//! unless the token still matches the Lease (docs/leader-fence.md).
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a write was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FenceError {
    /// The API server refused a write whose leadership token is no longer the Lease's.
    #[error("not the leader: the API server refused a write of a past leadership ({0})")]
    Refused(String),
    #[error("not the leader: the Lease has not been renewed for {since:?} (valid for {valid:?})")]
    Expired { since: Duration, valid: Duration },
    #[error("not the leader: the Lease is not held")]
    NotHeld,
}

#[derive(Debug)]
struct State {
    /// When the last successful renewal (or acquisition) was sent; `None` = not leading.
    renewed: Mutex<Option<Instant>>,
    /// How long after `renewed` writes stay allowed.
    valid_for: Duration,
    /// The token of the leadership held now ([`Fence::token`]), and when it was first recorded.
    token: Mutex<Option<(String, Instant)>>,
}

/// The annotation on an experiment Job naming the leadership that created it:
/// `<lease namespace>/<lease name>/<holderIdentity>/<leaseTransitions>` (src/leader.rs writes the
/// Lease; charts/chaos-conductor/templates/leader-fence.yaml compares the two).
pub const LEADER_ANNOTATION: &str = "chaos-conductor.io/leader";

/// The start of the leader-fence policy's refusal message, by which a refusal is told from any
/// other 403 (the chart's message begins with it).
pub const REFUSAL_MARK: &str = "chaos-conductor leader fence:";

/// Whether an API error is the leader-fence policy refusing a write of a past leadership.
pub fn refused(e: &kube::Error) -> Option<FenceError> {
    match e {
        kube::Error::Api(ae) if ae.code == 403 && ae.message.contains(REFUSAL_MARK) => {
            Some(FenceError::Refused(ae.message.clone()))
        }
        _ => None,
    }
}

/// Shared between the Lease task (which opens it) and every writer (which checks it).
/// The default fence is open forever: without leader election there is no one to fence against.
#[derive(Debug, Clone, Default)]
pub struct Fence {
    state: Option<Arc<State>>,
}

impl Fence {
    /// A fence for a Lease of `lease_duration`, closed until the first acquisition. Writes stop
    /// `margin` before the Lease could have expired in anyone else's eyes.
    pub fn for_lease(lease_duration: Duration, margin: Duration) -> Self {
        Self {
            state: Some(Arc::new(State {
                renewed: Mutex::new(None),
                valid_for: lease_duration.saturating_sub(margin),
                token: Mutex::new(None),
            })),
        }
    }

    /// Records a successful acquisition or renewal whose request was sent at `sent`.
    pub fn renewed(&self, sent: Instant) {
        if let Some(s) = &self.state
            && let Ok(mut r) = s.renewed.lock()
        {
            *r = Some(r.map_or(sent, |prev| prev.max(sent)));
        }
    }

    /// Records the token of the leadership just acquired or renewed (`now`: the acquisition, when
    /// the token is new).
    pub fn set_token(&self, token: String, now: Instant) {
        if let Some(s) = &self.state
            && let Ok(mut t) = s.token.lock()
            && t.as_ref().is_none_or(|(held, _)| *held != token)
        {
            *t = Some((token, now));
        }
    }

    /// Whether a refusal by the leader-fence policy can only mean that the API server's copy of the
    /// Lease is stale, not that we lost: the fence is open now (a renewal succeeded within the
    /// Lease), and this leadership began longer ago than any cache lag (the fence's validity).
    /// kube-apiserver (1.36) stops the param informer of a built-in kind when the last policy using
    /// it is deleted and does not restart it for the next one (docs/leader-fence.md), so after a
    /// chart uninstall and reinstall it can keep refusing the current leader for good.
    pub fn refusal_means_stale_server_cache(&self, now: Instant) -> bool {
        let Some(s) = &self.state else {
            return false;
        };
        let since = match s.token.lock() {
            Ok(t) => t.as_ref().map(|(_, at)| now.saturating_duration_since(*at)),
            Err(_) => None,
        };
        self.check_at(now).is_ok() && since.is_some_and(|d| d >= s.valid_for)
    }

    /// The token a fenced create carries in [`LEADER_ANNOTATION`]: that of the last leadership held
    /// (`None` without leader election, or before the first acquisition).
    pub fn token(&self) -> Option<String> {
        let s = self.state.as_ref()?;
        s.token.lock().ok()?.as_ref().map(|(t, _)| t.clone())
    }

    /// Closes the fence (Lease lost or released). The token stays: a write that passed the check
    /// before and leaves now must still carry it, so that the API server can refuse it.
    pub fn close(&self) {
        if let Some(s) = &self.state
            && let Ok(mut r) = s.renewed.lock()
        {
            *r = None;
        }
    }

    /// Whether a write may be sent now.
    pub fn check(&self) -> Result<(), FenceError> {
        self.check_at(Instant::now())
    }

    /// [`Fence::check`] at a given instant (tests pass their own).
    pub fn check_at(&self, now: Instant) -> Result<(), FenceError> {
        let Some(s) = &self.state else {
            return Ok(());
        };
        let renewed = s.renewed.lock().map_err(|_| FenceError::NotHeld)?;
        match *renewed {
            None => Err(FenceError::NotHeld),
            Some(at) => {
                let since = now.saturating_duration_since(at);
                if since < s.valid_for {
                    Ok(())
                } else {
                    Err(FenceError::Expired {
                        since,
                        valid: s.valid_for,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_leader_election_writes_are_always_allowed() {
        assert_eq!(Fence::default().check(), Ok(()));
    }

    #[test]
    fn closed_until_acquired_open_while_fresh_closed_after_the_validity() {
        let fence = Fence::for_lease(Duration::from_secs(10), Duration::from_secs(2));
        let t0 = Instant::now();
        assert_eq!(fence.check_at(t0), Err(FenceError::NotHeld));
        fence.renewed(t0);
        assert_eq!(fence.check_at(t0 + Duration::from_secs(7)), Ok(()));
        // A pause of 40 s: on resume, the fence is closed although nothing told us we lost.
        assert!(matches!(
            fence.check_at(t0 + Duration::from_secs(40)),
            Err(FenceError::Expired { .. })
        ));
        // Exactly at the validity bound it is closed (strictly less is required).
        assert!(fence.check_at(t0 + Duration::from_secs(8)).is_err());
        fence.renewed(t0 + Duration::from_secs(41));
        assert_eq!(fence.check_at(t0 + Duration::from_secs(42)), Ok(()));
        fence.close();
        assert_eq!(
            fence.check_at(t0 + Duration::from_secs(42)),
            Err(FenceError::NotHeld)
        );
    }

    #[test]
    fn an_older_renewal_never_moves_the_fence_back() {
        let fence = Fence::for_lease(Duration::from_secs(10), Duration::from_secs(2));
        let t0 = Instant::now();
        fence.renewed(t0 + Duration::from_secs(5));
        fence.renewed(t0);
        assert_eq!(fence.check_at(t0 + Duration::from_secs(12)), Ok(()));
    }

    #[test]
    fn the_token_outlives_the_leadership_so_a_late_write_still_carries_it() {
        assert_eq!(Fence::default().token(), None);
        let fence = Fence::for_lease(Duration::from_secs(10), Duration::from_secs(2));
        assert_eq!(fence.token(), None);
        fence.set_token("ns/lease/a/3".into(), Instant::now());
        fence.close();
        assert_eq!(fence.token().as_deref(), Some("ns/lease/a/3"));
    }

    #[test]
    fn a_refusal_means_a_stale_server_cache_only_long_into_a_leadership_we_still_hold() {
        let fence = Fence::for_lease(Duration::from_secs(10), Duration::from_secs(2));
        let t0 = Instant::now();
        fence.set_token("ns/lease/a/3".into(), t0);
        fence.renewed(t0);
        // Just after the takeover: the API server's cache may lag; the refusal stands.
        assert!(!fence.refusal_means_stale_server_cache(t0 + Duration::from_secs(1)));
        // Renewals went on for longer than any cache lag.
        fence.renewed(t0 + Duration::from_secs(20));
        // A renewal does not restart the leadership's age.
        fence.set_token("ns/lease/a/3".into(), t0 + Duration::from_secs(20));
        assert!(fence.refusal_means_stale_server_cache(t0 + Duration::from_secs(21)));
        // A paused leader: the fence has closed, so the refusal is right.
        assert!(!fence.refusal_means_stale_server_cache(t0 + Duration::from_secs(60)));
        // A new leadership starts a new age.
        fence.set_token("ns/lease/a/4".into(), t0 + Duration::from_secs(60));
        fence.renewed(t0 + Duration::from_secs(60));
        assert!(!fence.refusal_means_stale_server_cache(t0 + Duration::from_secs(61)));
        assert!(!Fence::default().refusal_means_stale_server_cache(t0));
    }

    #[test]
    fn only_the_policy_refusal_counts_as_a_fence_refusal() {
        let api = |code: u16, message: &str| {
            kube::Error::Api(
                kube::core::Status::failure(message, "Forbidden")
                    .with_code(code)
                    .boxed(),
            )
        };
        let msg = format!("admission denied: {REFUSAL_MARK} stale");
        assert!(matches!(refused(&api(403, &msg)), Some(FenceError::Refused(m)) if m == msg));
        assert_eq!(refused(&api(403, "jobs.batch is forbidden")), None);
        assert_eq!(refused(&api(422, &msg)), None);
    }
}

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
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Why a write was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FenceError {
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

    /// Closes the fence (Lease lost or released).
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
}

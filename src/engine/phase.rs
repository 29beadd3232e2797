//! The persisted phases: where each experiment, and the engine as a whole, stands.
//!
//! They are stored as strings in the engine status (`status.phase`, `status.experiments[].phase`)
//! so a restarted controller resumes from them; unknown strings read as the starting phase.
use std::fmt;

/// Phase of one experiment of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExperimentPhase {
    /// Not started: waiting for its turn, then validated and launched.
    Pending,
    /// Job created; waiting for its pod.
    Launched,
    /// Experiment pod seen running.
    Running,
    /// Finished with a verdict (and cleaned up per `jobCleanUpPolicy`).
    Done,
    /// Never launched: validation failed (Litmus status `Skipped` / `ChaosExperiment Not Found`).
    Skipped,
    /// Launched but ended abnormally: pod Failed, stuck Pending, Job vanished, deadline passed.
    Failed,
    /// Ended by an abort (Litmus status `Forcefully Aborted`).
    Aborted,
}

impl ExperimentPhase {
    /// Every phase, for parsing.
    pub const ALL: [ExperimentPhase; 7] = [
        Self::Pending,
        Self::Launched,
        Self::Running,
        Self::Done,
        Self::Skipped,
        Self::Failed,
        Self::Aborted,
    ];

    /// The string stored in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Launched => "Launched",
            Self::Running => "Running",
            Self::Done => "Done",
            Self::Skipped => "Skipped",
            Self::Failed => "Failed",
            Self::Aborted => "Aborted",
        }
    }

    /// Parses a stored phase; anything unknown (or empty) is `Pending`.
    pub fn parse(s: &str) -> Self {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .unwrap_or(Self::Pending)
    }

    /// Whether the experiment will not change any more in this run.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Done | Self::Skipped | Self::Failed | Self::Aborted
        )
    }

    /// Whether a Job of this experiment may exist and run.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Launched | Self::Running)
    }
}

impl fmt::Display for ExperimentPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Phase of the engine (`status.phase`), shown by `kubectl get chaosengine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnginePhase {
    /// Experiments are being validated, launched or monitored.
    Running,
    /// Every experiment ended; `engineStatus: completed`.
    Completed,
    /// Abort in progress: chaos pods are being deleted.
    Aborting,
    /// Aborted; `engineStatus: stopped`.
    Stopped,
    /// The engine itself is invalid; `engineStatus: stopped` with a message.
    Invalid,
}

impl EnginePhase {
    /// The string stored in the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "Running",
            Self::Completed => "Completed",
            Self::Aborting => "Aborting",
            Self::Stopped => "Stopped",
            Self::Invalid => "Invalid",
        }
    }
}

impl fmt::Display for EnginePhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_round_trip_and_unknown_is_pending() {
        for p in ExperimentPhase::ALL {
            assert_eq!(ExperimentPhase::parse(p.as_str()), p);
        }
        assert_eq!(ExperimentPhase::parse(""), ExperimentPhase::Pending);
        assert_eq!(ExperimentPhase::parse("bogus"), ExperimentPhase::Pending);
    }
}

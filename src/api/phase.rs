//! The persisted phases: where each experiment, and the engine as a whole, stands.
//!
//! They are stored in the engine status (`status.phase`, `status.experiments[].phase`) so a
//! restarted controller resumes from them. The CRD keeps them open strings (these are our fields,
//! not Litmus's: docs/litmus-compatibility.md#status-strings), so any string may be stored: one
//! this version does not know reads as `Unknown` and is written back unchanged, and an unknown
//! experiment phase is treated as not started.
use std::fmt;

use serde::{Deserialize, Serialize};

/// Phase of one experiment of one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
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
    /// A stored string this version does not know (empty: never written); read as not started.
    Unknown(String),
}

impl ExperimentPhase {
    /// Every known phase.
    pub const KNOWN: [ExperimentPhase; 7] = [
        Self::Pending,
        Self::Launched,
        Self::Running,
        Self::Done,
        Self::Skipped,
        Self::Failed,
        Self::Aborted,
    ];

    /// The string stored in the status.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "Pending",
            Self::Launched => "Launched",
            Self::Running => "Running",
            Self::Done => "Done",
            Self::Skipped => "Skipped",
            Self::Failed => "Failed",
            Self::Aborted => "Aborted",
            Self::Unknown(s) => s,
        }
    }

    /// Whether the experiment has not started: `Pending`, or a phase this version does not know
    /// (it has no Job of ours to watch, so validating and launching it is the safe reading).
    pub fn is_pending(&self) -> bool {
        matches!(self, Self::Pending | Self::Unknown(_))
    }

    /// Whether the experiment will not change any more in this run.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            Self::Done | Self::Skipped | Self::Failed | Self::Aborted
        )
    }

    /// Whether a Job of this experiment may exist and run.
    pub fn is_active(&self) -> bool {
        matches!(self, Self::Launched | Self::Running)
    }
}

/// Phase of the engine (`status.phase`), shown by `kubectl get chaosengine`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
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
    /// A stored string this version does not know (empty: no run yet).
    Unknown(String),
}

impl EnginePhase {
    /// Every known phase.
    pub const KNOWN: [EnginePhase; 5] = [
        Self::Running,
        Self::Completed,
        Self::Aborting,
        Self::Stopped,
        Self::Invalid,
    ];

    /// The string stored in the status.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Running => "Running",
            Self::Completed => "Completed",
            Self::Aborting => "Aborting",
            Self::Stopped => "Stopped",
            Self::Invalid => "Invalid",
            Self::Unknown(s) => s,
        }
    }

    /// Whether the run has ended (`Completed`, `Stopped`, `Invalid`).
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Completed | Self::Stopped | Self::Invalid)
    }
}

/// What both phase types share: parsing (unknown strings kept), the empty default, and the
/// string conversions serde and comparisons use.
macro_rules! string_phase {
    ($t:ty) => {
        impl $t {
            /// Reads a stored phase; a string no known phase has is kept as `Unknown`.
            pub fn parse(s: &str) -> Self {
                Self::KNOWN
                    .into_iter()
                    .find(|p| p.as_str() == s)
                    .unwrap_or_else(|| Self::Unknown(s.to_string()))
            }

            /// Whether nothing was ever stored (the field is then left out of the status).
            pub fn is_unset(&self) -> bool {
                matches!(self, Self::Unknown(s) if s.is_empty())
            }
        }
        impl Default for $t {
            /// Never written: the empty string, left out of the status.
            fn default() -> Self {
                Self::Unknown(String::new())
            }
        }
        impl From<String> for $t {
            fn from(s: String) -> Self {
                Self::parse(&s)
            }
        }
        impl From<&str> for $t {
            fn from(s: &str) -> Self {
                Self::parse(s)
            }
        }
        impl From<$t> for String {
            fn from(p: $t) -> String {
                p.as_str().to_string()
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}
string_phase!(ExperimentPhase);
string_phase!(EnginePhase);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_round_trip_and_unknown_is_pending() {
        for p in ExperimentPhase::KNOWN {
            assert_eq!(ExperimentPhase::parse(p.as_str()), p);
            assert!(!p.is_unset());
        }
        assert!(ExperimentPhase::parse("").is_pending());
        assert!(ExperimentPhase::parse("").is_unset());
        assert!(ExperimentPhase::parse("bogus").is_pending());
        assert!(!ExperimentPhase::parse("bogus").is_terminal());
        assert!(!ExperimentPhase::parse("bogus").is_active());
        for p in EnginePhase::KNOWN {
            assert_eq!(EnginePhase::parse(p.as_str()), p);
        }
    }

    #[test]
    fn unknown_strings_survive_a_read_and_a_write() {
        let e: ExperimentPhase = serde_json::from_value(serde_json::json!("Paused")).unwrap();
        assert_eq!(e, ExperimentPhase::Unknown("Paused".into()));
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!("Paused")
        );
        let g: EnginePhase = serde_json::from_value(serde_json::json!("Hibernating")).unwrap();
        assert!(!g.is_finished());
        assert_eq!(
            serde_json::to_value(&g).unwrap(),
            serde_json::json!("Hibernating")
        );
        let r: EnginePhase = serde_json::from_value(serde_json::json!("Completed")).unwrap();
        assert_eq!(r, EnginePhase::Completed);
    }
}

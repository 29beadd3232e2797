//! Per-engine limits that keep an engine object well inside etcd's request size and every name
//! the controller derives inside Kubernetes' name limits. `validate` refuses what exceeds them
//! offline and the controller refuses the same at run time, with the same words (the message
//! functions below), so a user sees one explanation wherever the limit is hit.

/// Longest experiment name: the Job is named `<experiment>-<6 chars>` and Kubernetes copies the
/// Job name into the `job-name` label of its pods, whose values are at most 63 characters.
pub const MAX_EXPERIMENT_NAME_LEN: usize = 56;
/// Most entries in `spec.experiments` of one engine (each has a `status.experiments` entry).
pub const MAX_EXPERIMENTS: usize = 1000;
/// Largest `spec.execution.iterations`.
pub const MAX_ITERATIONS: u32 = 1000;
/// Most per-iteration records kept in `status.runs` (the oldest go first; totals stay exact).
pub const MAX_RUN_RECORDS: usize = 100;

/// Longest Kubernetes label value (and so Job name, see [`MAX_EXPERIMENT_NAME_LEN`]).
const LABEL_VALUE_MAX: usize = 63;

/// Message for an experiment name longer than [`MAX_EXPERIMENT_NAME_LEN`].
pub fn experiment_name_too_long(name: &str) -> String {
    format!(
        "experiment name {name:?} is {} characters, at most {MAX_EXPERIMENT_NAME_LEN} are allowed: its Job is named <experiment>-<6 characters>, which must fit the {LABEL_VALUE_MAX}-character job-name label",
        name.chars().count()
    )
}

/// Message for more than [`MAX_EXPERIMENTS`] entries in `spec.experiments`.
pub fn too_many_experiments(n: usize) -> String {
    format!(
        "{n} experiments, at most {MAX_EXPERIMENTS} are allowed in one engine: split them over several engines"
    )
}

/// Message for `spec.execution.iterations` above [`MAX_ITERATIONS`].
pub fn too_many_iterations(n: u32) -> String {
    format!(
        "{n} iterations, at most {MAX_ITERATIONS} are allowed: the engine's status must stay small enough for etcd"
    )
}

/// Message for an empty `spec.definition.image` of a ChaosExperiment.
pub const EMPTY_IMAGE: &str = "must not be empty: it is the experiment container's image";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_allowed_name_makes_a_job_name_that_fits_a_label() {
        // `<name>-<6>`: the controller's Job name format.
        assert_eq!(MAX_EXPERIMENT_NAME_LEN + 1 + 6, LABEL_VALUE_MAX);
    }

    #[test]
    fn messages_name_the_numbers() {
        let name = "a".repeat(60);
        let m = experiment_name_too_long(&name);
        assert!(m.contains("is 60 characters, at most 56"), "{m}");
        assert!(too_many_experiments(1001).starts_with("1001 experiments, at most 1000"));
        assert!(too_many_iterations(5000).starts_with("5000 iterations, at most 1000"));
    }
}

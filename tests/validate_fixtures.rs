//! `chaos-conductor validate` on the fixtures: every valid one passes with no error, every invalid
//! one fails with exactly the lines of its `.expected` file.
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn validate(args: &[&str], stdin: Option<&[u8]>) -> Output {
    // CHAOS_CONDUCTOR_BIN: see tests/support/controller.rs (shared target directories).
    let bin = std::env::var_os("CHAOS_CONDUCTOR_BIN")
        .filter(|v| !v.is_empty())
        .map_or_else(
            || env!("CARGO_BIN_EXE_chaos-conductor").into(),
            PathBuf::from,
        );
    let mut child = Command::new(bin)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .arg("validate")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run chaos-conductor");
    {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin");
        if let Some(bytes) = stdin {
            pipe.write_all(bytes).expect("write stdin");
        }
    }
    child.wait_with_output().expect("wait")
}

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("fixture folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

/// Asserts that `validate` exited 0, showing its report when it did not.
fn assert_passes(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn valid_fixtures_pass_without_errors() {
    let out = validate(&["-f", "tests/fixtures/valid"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for line in stdout.lines() {
        assert!(
            line.contains(": note: ") || line.contains(": warning: "),
            "unexpected error: {line}"
        );
    }
    // Each valid file passes alone too (legacy-engine.yaml and the schedules run pod-delete).
    for file in yaml_files("tests/fixtures/valid") {
        let rel = file
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .expect("relative");
        let rel = rel.to_str().expect("utf-8");
        let mut args = vec!["-f", rel];
        if rel.ends_with("legacy-engine.yaml") || rel.contains("/schedule-") {
            args.extend(["-f", "tests/fixtures/valid/pod-delete.yaml"]);
        }
        let out = validate(&args, None);
        assert_passes(&out);
    }
}

#[test]
fn legacy_fields_are_notes_and_warnings_not_errors() {
    let out = validate(
        &[
            "-f",
            "tests/fixtures/valid/legacy-engine.yaml",
            "-f",
            "tests/fixtures/valid/pod-delete.yaml",
        ],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("spec.annotationCheck: note: legacy field"));
    assert!(
        stdout.contains("spec.components.monitor: warning: unknown field, the apiserver drops it")
    );
    assert!(stdout.contains("spec.experiments[0].spec.rank: warning: unknown field"));
    assert!(stdout.contains(
        "ServiceAccount/default/pod-delete-sa: (document): note: skipped: not a Litmus kind"
    ));
}

fn check_expected(dir: &str) -> usize {
    let mut count = 0;
    for file in yaml_files(dir) {
        let rel = file
            .strip_prefix(env!("CARGO_MANIFEST_DIR"))
            .expect("relative");
        let expected_path = file.with_extension("expected");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}", expected_path.display()));
        let out = validate(&["-f", rel.to_str().expect("utf-8")], None);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{}: {stdout}", rel.display());
        assert_eq!(
            stdout.lines().collect::<Vec<_>>(),
            expected.lines().collect::<Vec<_>>(),
            "{}",
            rel.display()
        );
        count += 1;
    }
    count
}

#[test]
fn invalid_fixtures_print_exactly_the_expected_lines() {
    assert!(check_expected("tests/fixtures/invalid") >= 20);
}

#[test]
fn invalid_schema_fixtures_print_exactly_the_expected_lines() {
    assert!(check_expected("tests/fixtures/invalid-schema") >= 10);
}

#[test]
fn stdin_and_json_output() {
    let yaml = std::fs::read("tests/fixtures/invalid/missing-experiment.yaml")
        .or_else(|_| {
            std::fs::read(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/invalid/missing-experiment.yaml"),
            )
        })
        .expect("fixture");
    let out = validate(&["-f", "-", "--output", "json"], Some(&yaml));
    assert_eq!(out.status.code(), Some(1));
    let problems: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let first = &problems[0];
    assert_eq!(first["severity"], "error");
    assert_eq!(first["file"], "-");
    assert_eq!(first["document"], 1);
    assert_eq!(first["kind"], "ChaosEngine");
    assert_eq!(first["namespace"], "default");
    assert_eq!(first["name"], "nginx-chaos");
    assert_eq!(first["field"], "spec.experiments[0].name");
    assert!(
        first["message"]
            .as_str()
            .is_some_and(|m| m.contains("not found"))
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("1 error(s)"));
}

#[test]
fn experiments_given_in_another_file_satisfy_the_engine() {
    // The engine of missing-experiment.yaml names pod-delete, which valid/pod-delete.yaml defines.
    let out = validate(
        &[
            "-f",
            "tests/fixtures/invalid/missing-experiment.yaml",
            "-f",
            "tests/fixtures/valid/pod-delete.yaml",
        ],
        None,
    );
    assert_passes(&out);
}

#[test]
fn unreadable_path_is_an_error_not_a_panic() {
    let out = validate(&["-f", "tests/fixtures/does-not-exist.yaml"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cannot read"));
}

#[test]
fn hub_description_is_part_of_the_schema_not_a_dropped_field() {
    // Hub faults carry a top-level `description`; the CRD declares it
    // (docs/litmus-compatibility.md#crds).
    let out = validate(&["-f", "tests/fixtures/valid"], None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        !stdout.lines().any(|l| l.contains(": description")),
        "validate reports the hub description:\n{stdout}"
    );
}

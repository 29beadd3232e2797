//! The command-line tools some tests drive (helm, kubectl), from the project's own cache: the
//! binaries `scripts/build-bins` builds from the Go module proxy. Nothing here needs a cluster.
#![allow(dead_code)]
use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The folder holding `names` (built on a cache miss by `scripts/build-bins <names>`; a cache hit
/// costs a few stat calls). Panics with the script's own output when it fails.
pub fn bin_dir(names: &[&str]) -> PathBuf {
    let out = Command::new(repo().join("scripts/build-bins"))
        .args(names)
        .output()
        .unwrap_or_else(|e| panic!("running scripts/build-bins {names:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "scripts/build-bins {names:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    for name in names {
        assert!(
            dir.join(name).is_file(),
            "scripts/build-bins printed {} but it holds no {name}",
            dir.display()
        );
    }
    dir
}

/// `helm` from the cache.
pub fn helm() -> PathBuf {
    bin_dir(&["helm"]).join("helm")
}

/// `kubectl` from the cache.
pub fn kubectl() -> PathBuf {
    bin_dir(&["kubectl"]).join("kubectl")
}

/// Runs `cmd`, returning stdout; panics with `what`, the exit status and stderr when it fails.
pub fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap_or_else(|e| panic!("{what}: output is not UTF-8: {e}"))
}

/// Every document of a multi-document YAML stream (empty documents dropped).
pub fn yaml_documents(yaml: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(yaml)
        .map(|doc| serde_json::Value::deserialize(doc).expect("a YAML document"))
        .filter(|v| !v.is_null())
        .collect()
}

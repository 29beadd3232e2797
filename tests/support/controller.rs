//! Runs chaos-conductor for a test: in-process (scoped to the test's namespace, stopped on drop) or
//! as the real binary in a child process (for kill -9 tests).
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chaos_conductor::controller::{self, Settings};
use chaos_conductor::engine::PlanConfig;
use chaos_conductor::metrics::Metrics;
use chaos_conductor::server::Health;
use kube::Client;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A controller running inside the test process; stops (gracefully) when dropped.
pub struct InProcessController {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
}

impl InProcessController {
    /// Starts a controller watching only `namespace`.
    pub fn start(client: Client, namespace: &str) -> Self {
        Self::start_with(client, namespace, PlanConfig::default())
    }

    /// Starts a controller watching only `namespace` with these decision tunables.
    pub fn start_with(client: Client, namespace: &str, plan: PlanConfig) -> Self {
        Self::start_inner(client, namespace, plan, false)
    }

    /// Starts what `chaos-conductor run` starts (engine controller and ChaosSchedule reconciler)
    /// watching only `namespace`.
    #[allow(dead_code)]
    pub fn start_all(client: Client, namespace: &str) -> Self {
        Self::start_inner(client, namespace, PlanConfig::default(), true)
    }

    fn start_inner(client: Client, namespace: &str, plan: PlanConfig, schedules: bool) -> Self {
        // TEST_LOG=debug (or any filter) shows the controller's log on stderr.
        if let Ok(filter) = std::env::var("TEST_LOG") {
            chaos_conductor::telemetry::init(chaos_conductor::telemetry::LogFormat::Text, &filter);
        }
        let settings = Settings {
            watch_namespace: Some(namespace.to_string()),
            concurrency: 8,
            plan,
            ..Settings::default()
        };
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let health = Arc::new(Health::default());
        let (tx, rx) = oneshot::channel::<()>();
        let (m, h) = (metrics.clone(), health.clone());
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = rx.await;
            };
            let parts = controller::run::Parts {
                client,
                settings,
                metrics: m,
                health: h,
            };
            let outcome = if schedules {
                chaos_conductor::scheduler::run_all(parts, shutdown).await
            } else {
                controller::run::run(parts, shutdown).await
            };
            if let Err(e) = outcome {
                panic!("controller failed: {e}");
            }
        });
        Self {
            stop: Some(tx),
            task: Some(task),
            metrics,
            health,
        }
    }

    /// Stops the controller and waits for in-flight work to finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(20), task).await;
        }
    }
}

impl Drop for InProcessController {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The controller binary: `CHAOS_CONDUCTOR_BIN` if set, else the one cargo built for this test.
///
/// The override exists because worktrees that share one CARGO_TARGET_DIR also share its
/// `debug/chaos-conductor`: the last build from any worktree wins, so a test could run another
/// branch's controller. Point it at a copy of your own build to be sure what runs.
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("CHAOS_CONDUCTOR_BIN")
        .filter(|v| !v.is_empty())
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_chaos-conductor").into())
}

/// The real `chaos-conductor run` binary in a child process.
pub struct ControllerProcess {
    child: Child,
    log: std::path::PathBuf,
}

impl ControllerProcess {
    /// Starts `chaos-conductor run --watch-namespace <ns>` with the test kubeconfig; its log goes
    /// to `target/test-logs/<log_name>.log`.
    pub fn start(namespace: &str, log_name: &str, extra: &[&str]) -> Self {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-logs");
        let _ = std::fs::create_dir_all(&dir);
        let log_path = dir.join(format!("{log_name}.log"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("controller log file");
        let child = Command::new(binary())
            .args([
                "run",
                "--watch-namespace",
                namespace,
                "--metrics-addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .env("KUBECONFIG", super::kubeconfig_path())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start chaos-conductor");
        Self {
            child,
            log: log_path,
        }
    }

    /// The log file (appended to by every process started with the same `log_name`).
    pub fn log_path(&self) -> &std::path::Path {
        &self.log
    }

    /// The log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the process with `kill -<signal> <pid>`.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} {}", self.child.id());
    }

    /// Whether the process has exited (and so no longer acts).
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }

    /// SIGKILL: no graceful shutdown, no last writes.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

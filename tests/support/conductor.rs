//! The controller binary in a child process with its own kubeconfig, as a Deployment runs it:
//! ServiceAccount tokens (TokenRequest API) and token-only kubeconfigs, the process itself
//! ([`Conductor`]), its HTTP endpoints and the Prometheus text it serves.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::{Api, PostParams};
use kube::config::Kubeconfig;
use serde_json::json;

use super::{TestEnv, kubeconfig_path, secs, wait_for};

/// A short-lived token of `sa` in the test namespace, from the TokenRequest API.
pub async fn service_account_token(env: &TestEnv, sa: &str) -> String {
    service_account_token_in(&env.client(), env.ns(), sa).await
}

/// A one-hour token of ServiceAccount `sa` in `ns` (TokenRequest API).
pub async fn service_account_token_in(client: &kube::Client, ns: &str, sa: &str) -> String {
    let request = TokenRequest {
        spec: Some(TokenRequestSpec {
            audiences: None,
            expiration_seconds: Some(3600),
            ..Default::default()
        }),
        ..Default::default()
    };
    let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    let out = sas
        .create_token_request(sa, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|e| panic!("token request for {ns}/{sa}: {e}"));
    out.status
        .and_then(|s| s.token)
        .expect("token request status with a token")
}

/// A kubeconfig with the test cluster's server and CA and `token` as the only credential.
pub fn write_token_kubeconfig(path: &Path, token: &str, ns: &str) {
    let admin_path = kubeconfig_path();
    let admin = Kubeconfig::read_from(&admin_path).expect("reading the test kubeconfig");
    let current = admin.current_context.clone().unwrap_or_default();
    let cluster_name = admin
        .contexts
        .iter()
        .find(|c| c.name == current)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .expect("current context of the test kubeconfig");
    let cluster = admin
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .expect("cluster of the test kubeconfig");
    let mut c = serde_json::Map::new();
    c.insert("server".into(), json!(cluster.server.expect("server")));
    if let Some(data) = cluster.certificate_authority_data {
        c.insert("certificate-authority-data".into(), json!(data));
    }
    if let Some(file) = cluster.certificate_authority {
        let file = PathBuf::from(file);
        let file = if file.is_relative() {
            admin_path.parent().unwrap_or(Path::new(".")).join(file)
        } else {
            file
        };
        c.insert(
            "certificate-authority".into(),
            json!(file.display().to_string()),
        );
    }
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test", "cluster": c}],
        "users": [{"name": "chart-sa", "user": {"token": token}}],
        "contexts": [{"name": "chart-sa", "context": {"cluster": "test", "user": "chart-sa", "namespace": ns}}],
        "current-context": "chart-sa",
    });
    std::fs::write(path, serde_norway::to_string(&config).unwrap()).expect("writing kubeconfig");
}

/// A kube client from a kubeconfig file.
pub async fn client_from(path: &Path) -> kube::Client {
    let kc = Kubeconfig::read_from(path).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .expect("kubeconfig config");
    kube::Client::try_from(config).expect("client")
}

// ---------------------------------------------------------------------------------------------
// The controller binary in a child process, with a fixed port and its own kubeconfig
// ---------------------------------------------------------------------------------------------

/// A free TCP port on 127.0.0.1 (bound and released; the controller binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `chaos-conductor run --watch-namespace <ns> --metrics-addr 127.0.0.1:<port> <extra>`.
pub struct Conductor {
    child: Child,
    port: u16,
    log: PathBuf,
    pub name: String,
}

impl Conductor {
    pub fn start(name: &str, kubeconfig: &Path, ns: &str, extra: &[&str]) -> Conductor {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-logs");
        std::fs::create_dir_all(&dir).expect("log dir");
        let log = dir.join(format!("deployment-{ns}-{name}.log"));
        let file = std::fs::File::create(&log).expect("controller log file");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_chaos-conductor"))
            .args(["run", "--watch-namespace", ns, "--metrics-addr", &addr])
            .args(["--log-format", "text", "--log-level", "info"])
            .args(extra)
            .env("KUBECONFIG", kubeconfig)
            .env_remove("RUST_LOG")
            .env_remove("POD_NAME")
            .env_remove("WATCH_NAMESPACE")
            .env_remove("LEADER_ELECT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .expect("start chaos-conductor");
        eprintln!(
            "[e2e] controller {name}: pid {} port {port} log {}",
            child.id(),
            log.display()
        );
        Conductor {
            child,
            port,
            log,
            name: name.into(),
        }
    }

    /// The process's line `key:` of /proc/<pid>/status (Linux), e.g. `THP_enabled`.
    pub fn proc_status(&self, key: &str) -> Option<String> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .map(|v| v.trim().to_string())
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the log contains `needle`; panics with the log on timeout (or on exit).
    pub async fn wait_log(&mut self, needle: &str, timeout: Duration) -> Duration {
        let start = Instant::now();
        loop {
            if self.log_text().contains(needle) {
                return start.elapsed();
            }
            if let Some(status) = self.exited() {
                panic!(
                    "controller {} exited ({status}) before logging {needle:?}; log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            if start.elapsed() > timeout {
                panic!(
                    "controller {} did not log {needle:?} within {timeout:?}; log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM (graceful shutdown).
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill -TERM");
        assert!(status.success(), "kill -TERM {}", self.child.id());
    }

    /// Waits for the process to exit after [`Conductor::terminate`].
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(s) = self.exited() {
                return s;
            }
            if start.elapsed() > timeout {
                panic!(
                    "controller {} still running {timeout:?} after SIGTERM; log:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: no graceful shutdown, the Lease is not released.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// `GET http://127.0.0.1:<port><path>`: (status code, body).
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        let port = self.port;
        let path = path.to_string();
        tokio::task::spawn_blocking(move || http_get(port, &path)).await?
    }

    /// Waits until `path` answers 200.
    pub async fn wait_ok(&self, path: &str) {
        wait_for(
            &format!("{} {path} 200", self.name),
            secs(60),
            async || match self.get(path).await? {
                (200, body) => Ok(body),
                (code, body) => Err(anyhow!("{code} {body}")),
            },
        )
        .await;
    }

    pub async fn metrics(&self) -> anyhow::Result<Vec<Sample>> {
        match self.get("/metrics").await? {
            (200, body) => Ok(parse_metrics(&body)),
            (code, body) => bail!("/metrics: {code} {body}"),
        }
    }

    /// Asserts that the log has no authorization failure.
    pub fn assert_no_forbidden(&self) {
        let log = self.log_text();
        let bad: Vec<&str> = log
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("forbidden"))
            .collect();
        assert!(
            bad.is_empty(),
            "controller {} logged forbidden:\n{}",
            self.name,
            bad.join("\n")
        );
    }
}

impl Drop for Conductor {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A minimal HTTP/1.1 GET (the endpoints answer with a Content-Length body).
pub fn http_get(port: u16, path: &str) -> anyhow::Result<(u16, String)> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = std::net::TcpStream::connect_timeout(&addr, secs(2))?;
    s.set_read_timeout(Some(secs(5)))?;
    s.set_write_timeout(Some(secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8(buf).context("response is not UTF-8")?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("no header end in {text:?}"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("bad status line in {head:?}"))?;
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        bail!("chunked response not supported: {head}");
    }
    Ok((code, body.to_string()))
}

// ---------------------------------------------------------------------------------------------
// Prometheus text format
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

pub fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_sample)
        .collect()
}

pub fn parse_sample(line: &str) -> Option<Sample> {
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => (&line[..i], &line[i..]),
        None => return None,
    };
    let mut labels = BTreeMap::new();
    let mut rest = rest;
    if let Some(r) = rest.strip_prefix('{') {
        let mut chars = r.char_indices().peekable();
        let mut end = None;
        loop {
            // key
            let mut key = String::new();
            while let Some(&(i, c)) = chars.peek() {
                if c == '}' {
                    end = Some(i);
                    break;
                }
                chars.next();
                if c == '=' {
                    break;
                }
                if c != ',' {
                    key.push(c);
                }
            }
            if end.is_some() {
                break;
            }
            // quoted value
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut value = String::new();
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next().map(|(_, c)| c) {
                        Some('n') => value.push('\n'),
                        Some(o) => value.push(o),
                        None => return None,
                    },
                    '"' => break,
                    o => value.push(o),
                }
            }
            labels.insert(key, value);
        }
        rest = &r[end? + 1..];
    }
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The value of the one sample `name` whose labels include `with`; an error says what exists.
pub fn value_of(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> anyhow::Result<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            with.iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    match found.as_slice() {
        [one] => Ok(one.value),
        [] => {
            let all: Vec<String> = samples
                .iter()
                .filter(|s| s.name == name)
                .map(|s| format!("{:?} {}", s.labels, s.value))
                .collect();
            bail!("no {name} with {with:?}; have {all:?}")
        }
        many => bail!("{} samples of {name} with {with:?}: {many:?}", many.len()),
    }
}

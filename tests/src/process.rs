//! One service binary run as a child process: started with its own environment, awaited on
//! `/readyz`, killed with SIGKILL (a crash, no shutdown hooks) and restarted on the same port.
//! A child never outlives its [`ServiceProcess`]: dropping it kills the process.

use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// Where the workspace binaries are: `CHAOS_BIN_DIR`, else the profile directory holding the
/// running executable (`target/debug/deps/<test>` -> `target/debug`; `target/release/bench` ->
/// `target/release`).
pub fn bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CHAOS_BIN_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("the running executable's path");
    let mut dir = exe.parent().expect("an executable lives in a directory");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("deps/ lives in the profile directory");
    }
    dir.to_path_buf()
}

/// The path of workspace binary `name`, or an error that says how to build it.
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir().join(name);
    anyhow::ensure!(
        path.is_file(),
        "binary {} not found: build the services first with `cargo build --workspace --bins` \
         (same profile as the tests), or point CHAOS_BIN_DIR at them",
        path.display()
    );
    Ok(path)
}

/// A free TCP port on 127.0.0.1 (taken by asking the kernel for an ephemeral one).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// What to run: the program, its arguments and its complete `CHAOS__*` environment.
#[derive(Debug, Clone)]
pub struct ProcessSpec {
    /// Unique within a stack (`relay-a`); names the log file.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// The HTTP bind (`127.0.0.1:<port>`) that serves `/readyz`.
    pub http_bind: String,
}

/// A running (or killed) service process.
#[derive(Debug)]
pub struct ServiceProcess {
    spec: ProcessSpec,
    log_path: PathBuf,
    child: Option<Child>,
    starts: u32,
    http: reqwest::Client,
}

impl ServiceProcess {
    /// Starts the process (logs appended to `<log_dir>/<name>.log`); does not wait for it.
    pub fn spawn(spec: ProcessSpec, log_dir: &Path) -> anyhow::Result<Self> {
        let mut process = Self {
            log_path: log_dir.join(format!("{}.log", spec.name)),
            spec,
            child: None,
            starts: 0,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(3))
                .build()?,
        };
        process.start()?;
        Ok(process)
    }

    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.spec.http_bind)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Starts the process if it is not running.
    pub fn start(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        self.starts += 1;
        use std::io::Write;
        writeln!(
            log,
            "=== harness: start #{} of {}",
            self.starts, self.spec.name
        )?;
        let mut command = Command::new(&self.spec.program);
        command
            .args(&self.spec.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // Only the settings the test gives: nothing leaks in from the developer's shell.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CHAOS_") {
                command.env_remove(key);
            }
        }
        command.envs(self.spec.env.iter().map(|(k, v)| (k, v)));
        let child = command
            .spawn()
            .with_context(|| format!("spawning {}", self.spec.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Whether the child is alive (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// SIGKILL and reap: a crash, with no chance to flush, checkpoint or release anything.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits until `/readyz` answers 200; fails early (with the log's tail) if the process dies.
    pub async fn wait_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let url = format!("{}/readyz", self.base_url());
        let deadline = Instant::now() + timeout;
        loop {
            if !self.is_running() {
                anyhow::bail!(
                    "{} exited before it was ready; log {}:\n{}",
                    self.spec.name,
                    self.log_path.display(),
                    self.log_tail(40)
                );
            }
            let last = match self.http.get(&url).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) => format!("{} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                anyhow::bail!(
                    "{} not ready after {timeout:?} ({last}); log {}:\n{}",
                    self.spec.name,
                    self.log_path.display(),
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`, start again on the same port, wait until ready.
    pub async fn restart(&mut self, timeout: Duration) -> anyhow::Result<()> {
        self.kill9();
        self.start()?;
        self.wait_ready(timeout).await
    }

    /// The body of `GET /metrics`.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.base_url()))
            .send()
            .await?
            .error_for_status()?
            .text()
            .await?)
    }

    /// The last `lines` lines of the process's log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_path, lines)
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The last `lines` lines of a file (reads at most the last 64 KiB).
pub fn tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::from("(no log)");
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
    let mut text = String::new();
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_ok() {
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A metric's value summed over its label sets, from a Prometheus text exposition.
pub fn metric_value(exposition: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in exposition.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with(' ') || rest.starts_with('{')) {
            continue;
        }
        let value = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        if let Some(v) = value {
            found = Some(found.unwrap_or(0.0) + v);
        }
    }
    found
}

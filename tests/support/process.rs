//! Child processes that can never outlive the process that started them.
//!
//! A `static` test environment is never dropped, and a test process may abort or be killed, so
//! explicit cleanup alone would leak etcd, kube-apiserver and moto. Every environment therefore
//! starts one watchdog: a tiny shell script whose stdin is a pipe held only by this process.
//! Each child's pid is written to that pipe. When the pipe closes (normal teardown, panic,
//! abort, SIGKILL: the kernel closes it in every case) the watchdog terminates every listed pid
//! and, for a temporary environment, removes its directory.

use std::fs::File;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};

/// Reads pids until EOF, sends SIGTERM, escalates to SIGKILL after 5 s, then removes `$1` if
/// given, unless the input contained `keep` (an orderly stop, where `TempDir` removes the
/// directory later). `kill -0` keeps succeeding on a zombie, so the loop is bounded: an
/// unreaped child must not keep the watchdog around forever.
const WATCHDOG_SCRIPT: &str = r#"
pids=
keep=
for word in $(cat); do
  case "$word" in
    keep) keep=1 ;;
    *) pids="$pids $word" ;;
  esac
done
for p in $pids; do kill -TERM "$p" 2>/dev/null; done
i=0
while [ "$i" -lt 100 ]; do
  alive=
  for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break
  [ "$i" -eq 50 ] && for p in $pids; do kill -KILL "$p" 2>/dev/null; done
  sleep 0.1
  i=$((i + 1))
done
if [ -n "$1" ] && [ -z "$keep" ]; then rm -rf -- "$1" 2>/dev/null; fi
exit 0
"#;

/// The watchdog process plus the write end of its stdin pipe.
pub(crate) struct Watchdog {
    process: Child,
    stdin: Option<ChildStdin>,
}

impl Watchdog {
    /// Starts the watchdog; `cleanup` is a directory it removes once every child is gone.
    pub(crate) fn spawn(cleanup: Option<&Path>) -> Result<Self> {
        let mut process = Command::new("bash")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("lakeops-testenv-watchdog")
            .arg(cleanup.map(Path::as_os_str).unwrap_or_default())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C on the terminal must kill the test process (which
            // closes the pipe), not the watchdog before it has done its job.
            .process_group(0)
            .spawn()
            .context("starting the watchdog (bash)")?;
        let stdin = process.stdin.take();
        Ok(Self { process, stdin })
    }

    /// Starts `program` with stdout and stderr appended to `log`, and registers it with the
    /// watchdog before returning.
    pub(crate) fn spawn_child(
        &mut self,
        name: &'static str,
        program: &Path,
        args: &[String],
        log: &Path,
    ) -> Result<Supervised> {
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("duplicating the log file handle")?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // Own process group, so a terminal Ctrl-C reaches only the test process and the
            // orderly teardown (or the watchdog) decides when children stop.
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {name} ({})", program.display()))?;
        let mut supervised = Supervised { name, child, log: log.to_path_buf() };
        let registered = match self.stdin.as_mut() {
            Some(stdin) => writeln!(stdin, "{}", supervised.child.id())
                .and_then(|()| stdin.flush())
                .context("registering the child with the watchdog"),
            None => Err(anyhow::anyhow!("the watchdog was already released")),
        };
        if let Err(e) = registered {
            // Unwatched, it could leak: stop it now.
            supervised.kill_and_wait();
            return Err(e);
        }
        Ok(supervised)
    }

    /// Tells the watchdog not to remove the directory (the owner will).
    pub(crate) fn keep_dir(&mut self) {
        if let Some(stdin) = self.stdin.as_mut() {
            // Best effort: if this fails the watchdog removes the directory a little early.
            let _ = writeln!(stdin, "keep").and_then(|()| stdin.flush());
        }
    }

    /// Closes the pipe, which makes the watchdog send SIGTERM to every registered child.
    pub(crate) fn release(&mut self) {
        self.stdin = None;
    }

    /// Waits (bounded) for the watchdog to finish its cleanup; kills it if it does not.
    pub(crate) fn wait(&mut self, timeout: Duration) {
        self.release();
        if wait_timeout(&mut self.process, timeout).is_none() {
            let _ = self.process.kill();
            let _ = self.process.wait();
        }
    }
}

/// One supervised child and its log file.
pub(crate) struct Supervised {
    pub(crate) name: &'static str,
    pub(crate) child: Child,
    pub(crate) log: PathBuf,
}

impl Supervised {
    /// Fails with the exit status and the tail of the log if the child has already exited.
    pub(crate) fn ensure_running(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!(
                "{} exited during start-up ({status}); last lines of {}:\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log, 40)
            ),
            Err(e) => Err(e).with_context(|| format!("checking whether {} runs", self.name)),
        }
    }

    /// Waits up to `deadline` for the child to exit, then SIGKILLs it.
    pub(crate) fn wait_or_kill(&mut self, deadline: Instant) {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if wait_timeout(&mut self.child, remaining).is_none() {
            self.kill_and_wait();
        }
    }

    fn kill_and_wait(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `try_wait` until the child exits or `timeout` passes (std has no timed wait).
fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            // Timed out, or the child can no longer be waited for.
            _ => return None,
        }
    }
}

/// The last `lines` lines of a log file, for error messages.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// `n` distinct free TCP ports on 127.0.0.1. All listeners are held until every port is chosen,
/// so the ports differ from each other; another process may still take one before the child
/// binds it, which start-up treats as a retryable failure.
pub(crate) fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let mut listeners = Vec::with_capacity(N);
    let mut ports = [0u16; N];
    for port in &mut ports {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
        *port = listener.local_addr().context("reading a bound address")?.port();
        listeners.push(listener);
    }
    Ok(ports)
}

//! Long-running child processes (`quorumctl follow`, `quorumctl wait`) and reading their output
//! line by line with a deadline.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ExitStatus};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// A child process that is SIGKILLed and reaped when dropped.
pub struct ChildGuard {
    child: Child,
    exit: Option<ExitStatus>,
}

impl ChildGuard {
    /// Takes ownership of `child`.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard { child, exit: None }
    }

    /// The child's stdout as a [`Lines`] reader (only once; stdout must have been piped).
    pub fn stdout_lines(&mut self) -> Lines {
        Lines::new(
            self.child
                .stdout
                .take()
                .expect("stdout piped and not taken yet"),
        )
    }

    /// Everything the child wrote on stderr (call after it exited).
    pub fn stderr_text(&mut self) -> String {
        let mut s = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }

    /// Waits up to `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if self.exit.is_none() {
                self.exit = self.child.try_wait().expect("waiting for a child");
            }
            if self.exit.is_some() || start.elapsed() > timeout {
                return self.exit;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Lines read by a background thread, received with a deadline.
pub struct Lines {
    rx: Receiver<String>,
}

impl Lines {
    /// Reads `reader` line by line on a thread until EOF.
    pub fn new(reader: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx }
    }

    /// The next line, waiting at most until `deadline`; `None` on timeout or EOF.
    pub fn next_before(&self, deadline: Instant) -> Option<String> {
        let left = deadline.saturating_duration_since(Instant::now());
        // Timeout and EOF (the reader thread ended) both mean "no line".
        self.rx.recv_timeout(left).ok()
    }
}

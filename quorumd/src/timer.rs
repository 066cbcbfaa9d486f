//! A deadline timer for the driver's loop and the hello schedule: on Linux, one timerfd in the
//! runtime's epoll set; elsewhere (or without a timerfd) tokio's timer.
//!
//! Why not `tokio::time::sleep_until` alone: tokio's timer wheel keeps a timer more than
//! 64 ms away on a coarser level and, at the start of its 64 ms slot, moves it down to the
//! finest one. That is a wake-up of the whole process with nothing else to do. After every
//! round the driver's next deadline is a heartbeat (150 ms) away, so an idle node woke about
//! once more per round than it had work for. A timerfd wakes the process once, at the
//! deadline. (The transport's timers are rarely that far away and live: each frame on a link
//! replaces them long before their slot comes.)

use tokio::time::Instant;

/// A one-shot timer, re-armed only when the deadline changes.
pub struct DeadlineTimer {
    #[cfg(target_os = "linux")]
    fd: Option<tokio::io::unix::AsyncFd<std::os::fd::OwnedFd>>,
    /// The deadline the timerfd is armed for.
    #[cfg(target_os = "linux")]
    armed: Option<Instant>,
}

impl Default for DeadlineTimer {
    fn default() -> Self {
        Self::new()
    }
}

impl DeadlineTimer {
    /// A timerfd-backed timer where there is one (must run inside the runtime).
    pub fn new() -> Self {
        DeadlineTimer {
            #[cfg(target_os = "linux")]
            fd: linux::create()
                .map_err(|e| tracing::debug!(error = %e, "no timerfd: using tokio's timer"))
                .ok(),
            #[cfg(target_os = "linux")]
            armed: None,
        }
    }

    /// Completes once `deadline` has passed (at once if it has). Cancel-safe: dropped
    /// earlier, the timer stays armed, and a later call for the same deadline waits for it.
    pub async fn sleep_until(&mut self, deadline: Instant) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.fd {
            match linux::wait(fd, &mut self.armed, deadline).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "timerfd failed: using tokio's timer");
                    self.fd = None;
                }
            }
        }
        tokio::time::sleep_until(deadline).await
    }
}

#[cfg(target_os = "linux")]
mod linux {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;
    use tokio::time::Instant;

    pub(super) fn create() -> io::Result<AsyncFd<OwnedFd>> {
        // SAFETY: no pointers; a non-negative result is a new descriptor nobody else owns.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a valid descriptor we just created and own alone.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the descriptor is valid, and the AsyncFd owns it: nothing replaces or
        // closes it while registered.
        unsafe { Ok(AsyncFd::register_with_interest(fd, Interest::READABLE)?) }
    }

    /// Waits on `fd` until `deadline`, arming it first unless `armed` says it already is
    /// (`tokio::time::Instant` reads `CLOCK_MONOTONIC`, the timerfd's clock).
    pub(super) async fn wait(
        fd: &AsyncFd<OwnedFd>,
        armed: &mut Option<Instant>,
        deadline: Instant,
    ) -> io::Result<()> {
        loop {
            let now = Instant::now();
            if deadline <= now {
                return Ok(());
            }
            if *armed != Some(deadline) {
                // Never zero (that would disarm it): the deadline is still ahead.
                let after = deadline - now;
                let spec = libc::itimerspec {
                    it_interval: libc::timespec {
                        tv_sec: 0,
                        tv_nsec: 0,
                    },
                    it_value: libc::timespec {
                        tv_sec: libc::time_t::try_from(after.as_secs())
                            .unwrap_or(libc::time_t::MAX),
                        tv_nsec: libc::c_long::from(after.subsec_nanos() as i32),
                    },
                };
                // SAFETY: `spec` is a valid itimerspec; the old value is not asked for.
                let r = unsafe {
                    libc::timerfd_settime(fd.as_raw_fd(), 0, &spec, std::ptr::null_mut())
                };
                if r < 0 {
                    *armed = None;
                    return Err(io::Error::last_os_error());
                }
                *armed = Some(deadline);
            }
            let mut ready = fd.readable().await?;
            // Reading the expiry count clears it, and the readiness with it (else the next
            // wait would start with a read that finds nothing); nothing to read (an expiry
            // of an earlier setting, re-armed since) clears the readiness too: wait again.
            let read = ready.try_io(|fd| {
                let mut expiries = 0u64;
                // SAFETY: reads at most 8 bytes into a valid, writable u64.
                let n = unsafe {
                    libc::read(
                        fd.as_raw_fd(),
                        (&mut expiries as *mut u64).cast::<libc::c_void>(),
                        std::mem::size_of::<u64>(),
                    )
                };
                if n < 0 {
                    Err(io::Error::last_os_error())
                } else {
                    Ok(())
                }
            });
            match read {
                Ok(Ok(())) => ready.clear_ready(),
                // Not "would block" (that is `Err(_)`): the timerfd is unusable.
                Ok(Err(e)) => return Err(e),
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn it_completes_at_its_deadline_not_before_and_follows_a_moved_one() {
        let mut t = DeadlineTimer::new();
        #[cfg(target_os = "linux")]
        assert!(t.fd.is_some(), "no timerfd on Linux");
        let start = Instant::now();
        t.sleep_until(start + Duration::from_millis(30)).await;
        assert!(start.elapsed() >= Duration::from_millis(30));
        // Abandoned early (as when another branch of the driver's select wins), then moved
        // nearer, then waited for: the new deadline counts, not the old one.
        let far = Instant::now() + Duration::from_secs(10);
        let abandoned = tokio::time::timeout(Duration::from_millis(5), t.sleep_until(far)).await;
        assert!(abandoned.is_err());
        let near = Instant::now() + Duration::from_millis(20);
        tokio::time::timeout(Duration::from_secs(5), t.sleep_until(near))
            .await
            .expect("the moved deadline was missed");
        assert!(Instant::now() >= near);
        // A past deadline completes at once.
        t.sleep_until(start).await;
        // Same deadline again after it passed: at once too.
        t.sleep_until(near).await;
    }
}

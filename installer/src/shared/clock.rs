//! Time, the third thing the rollout reaches the fleet through (beside
//! [`crate::shared::transport::Transport`] and
//! [`crate::shared::systemd::ServiceManager`]): what it reads to know how
//! long a unit has been up and how it waits between looks. [`SystemClock`] is the machine's
//! monotonic clock, the one systemd's `*TimestampMonotonic` properties
//! count in; the in-memory fleet runs its own clock, so that a settle
//! window of seconds passes at once in a test and a crash at 3 s happens at
//! exactly 3 s.

use std::time::Duration;

pub(crate) trait Clock {
    /// Time since boot on `CLOCK_MONOTONIC`.
    fn now(&self) -> Duration;
    fn sleep(&self, duration: Duration);
}

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `now` is a valid timespec to write to, and CLOCK_MONOTONIC
        // always exists on Linux.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_MONOTONIC) failed");
        Duration::new(
            u64::try_from(now.tv_sec).unwrap_or(0),
            u32::try_from(now.tv_nsec).unwrap_or(0),
        )
    }

    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_clock_moves_forward_by_at_least_the_sleep() {
        let clock = SystemClock;
        let before = clock.now();
        clock.sleep(Duration::from_millis(20));
        assert!(clock.now() - before >= Duration::from_millis(20));
    }
}

//! The systemd notification protocol (sd_notify(3)) for `Type=notify`: `READY=1` once the
//! listeners are bound and the store is open, `RELOADING=1`/`READY=1` around a reload,
//! `STOPPING=1` when stopping, and `WATCHDOG=1` at half of `WATCHDOG_USEC` when the unit sets
//! `WatchdogSec=`. Without `NOTIFY_SOCKET` (not started by systemd) every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Tells systemd the daemon is ready, with a status line.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd a reload started.
pub fn reloading() {
    send(&[NotifyState::Reloading]);
}

/// Tells systemd a reload finished, with its outcome as the status line.
pub fn reloaded(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd the daemon is stopping.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// The interval at which to send `WATCHDOG=1`: half of `WATCHDOG_USEC`, when it is set for
/// this process.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled()
        .filter(|d| !d.is_zero())
        .map(|d| d / 2)
}

/// Sends `WATCHDOG=1` every `interval`, forever (spawn it; abort it to stop).
pub async fn watchdog(interval: Duration) {
    let mut ticks = tokio::time::interval(interval);
    loop {
        ticks.tick().await;
        send(&[NotifyState::Watchdog]);
    }
}

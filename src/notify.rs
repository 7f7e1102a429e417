//! systemd's service notification protocol (`Type=notify`), through the
//! `sd-notify` crate. Every call is a no-op when `NOTIFY_SOCKET` is not set
//! (drover not started by systemd), and a failure to send is logged, never fatal.
//!
//! What drover sends, in order: `READY=1` once the proxy listeners are bound and
//! every pool's first round of health checks is done (the moment `/readyz` turns
//! 200); around each reload `RELOADING=1` with `MONOTONIC_USEC` and then `READY=1`
//! (also when the reload was refused: the old config keeps running); `STOPPING=1`
//! when a shutdown begins. With `WatchdogSec=` in the unit (systemd then sets
//! `WATCHDOG_USEC`), `WATCHDOG=1` every `WATCHDOG_USEC / 2`, from the runtime that
//! runs the health checks and the admin API, so a stalled drover stops pinging.

use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

/// How often [`ready_when`] looks at readiness. 50 ms.
pub const READY_POLL: Duration = Duration::from_millis(50);

fn send(states: &[NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "sd_notify failed");
    }
}

/// `READY=1`.
pub fn ready() {
    send(&[NotifyState::Ready]);
}

/// `RELOADING=1` and `MONOTONIC_USEC=<now>` (systemd wants both since v253).
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

/// `STOPPING=1`.
pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Sends `READY=1` once `is_ready` turns true (polled every [`READY_POLL`]).
pub async fn ready_when(is_ready: Arc<dyn Fn() -> bool + Send + Sync>) {
    while !is_ready() {
        tokio::time::sleep(READY_POLL).await;
    }
    ready();
}

/// The watchdog interval systemd asked for (`WATCHDOG_USEC` for this process), halved.
/// `None` when the watchdog is off.
pub fn watchdog_period() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|d| (d / 2).max(Duration::from_millis(1)))
}

/// Sends `WATCHDOG=1` every `period`, forever (spawn it; abort it at exit).
pub async fn watchdog(period: Duration) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        send(&[NotifyState::Watchdog]);
    }
}

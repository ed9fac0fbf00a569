//! The long-running server (Render, a laptop): binds `host:port`, serves `http::app`, and shuts
//! down gracefully on SIGTERM/Ctrl-C, finishing requests in flight. Between requests a
//! background task runs the memory guard's check, so an idle server still frees memory.

use std::net::SocketAddr;
use std::time::Duration;

use crate::service::{app, AppState};

/// Serves until a shutdown signal; `memory_check` is the background check's period (`None`: off).
pub async fn serve(state: AppState, addr: SocketAddr, memory_check: Option<Duration>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, "listening");
    if let Some(period) = memory_check {
        tokio::spawn(check_memory_every(state.clone(), period));
    }
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown_signal()).await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// The guard's check between requests; on a blocking thread, since a cleanup may `malloc_trim`.
async fn check_memory_every(state: AppState, period: Duration) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await; // the first tick is immediate; start-up was just checked by a request or not needed
    loop {
        ticks.tick().await;
        let s = state.clone();
        let _ = tokio::task::spawn_blocking(move || s.memory.check(s.reclaim())).await;
    }
}

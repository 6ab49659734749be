//! What triggers a reload: changes in the plugins and policies directories
//! (debounced) and SIGHUP. `POST /admin/reload` calls the gateway directly.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use notify::{EventKind, RecursiveMode, Watcher};
use pingora_core::server::ShutdownWatch;
use pingora_core::services::background::BackgroundService;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::Gateway;

/// A pingora background service that reloads the gateway's snapshot.
pub struct Reloader {
    pub gateway: Arc<Gateway>,
    pub dirs: Vec<PathBuf>,
    pub debounce: Duration,
    pub watch: bool,
}

#[async_trait]
impl BackgroundService for Reloader {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let (tx, mut rx) = mpsc::unbounded_channel::<()>();
        let _watcher = if self.watch {
            match self.watch_dirs(tx) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::error!(
                        "cannot watch plugin directories ({e}); use SIGHUP or POST /admin/reload"
                    );
                    None
                }
            }
        } else {
            None
        };
        let mut hangup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!("cannot handle SIGHUP: {e}");
                return;
            }
        };
        loop {
            let cause = tokio::select! {
                _ = shutdown.changed() => return,
                _ = hangup.recv() => "SIGHUP",
                Some(()) = rx.recv() => {
                    // Let a burst of events (a copy in progress, several
                    // files at once) settle into one reload.
                    loop {
                        tokio::select! {
                            _ = tokio::time::sleep(self.debounce) => break,
                            Some(()) = rx.recv() => {}
                        }
                    }
                    "file change"
                }
            };
            self.gateway.reload(cause).await;
        }
    }
}

impl Reloader {
    fn watch_dirs(
        &self,
        tx: mpsc::UnboundedSender<()>,
    ) -> notify::Result<notify::RecommendedWatcher> {
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                let Ok(event) = res else { return };
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
                }
                let relevant = event
                    .paths
                    .iter()
                    .any(|p| p.extension().is_some_and(|x| x == "wasm" || x == "toml"));
                if relevant {
                    let _ = tx.send(());
                }
            })?;
        for dir in &self.dirs {
            watcher.watch(dir, RecursiveMode::NonRecursive)?;
        }
        Ok(watcher)
    }
}

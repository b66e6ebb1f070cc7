//! The accept loop, the stats ticker and graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::Config;
use crate::conn::{self, Shared};
use crate::hub::Hub;
use crate::limits::Admission;
use crate::stats::Stats;

/// Refused connections that may be in their (short) TLS handshake at once,
/// to be told why; beyond that, refused sockets are closed at once. A pool of
/// its own, so refusals never take places from admitted connections.
const REFUSALS_IN_FLIGHT: usize = 64;

/// A bound, ready relay.
#[derive(Debug)]
pub struct Relay {
    listener: TcpListener,
    shared: Shared,
    admission: Arc<Admission>,
    fingerprint: String,
    config: Config,
    /// The backplane, connected, waiting to run with the hub.
    backplane: Option<crate::backplane::Pending>,
    backplane_stop: CancellationToken,
}

impl Relay {
    /// Loads the certificate, binds the listen address.
    pub async fn bind(config: Config) -> Result<Relay> {
        let (acceptor, fingerprint) = crate::tls::acceptor(&config.cert, &config.key)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let stats = Arc::new(Stats::default());
        let limits = config.limits.clone();
        let hub = Hub::new(
            limits.max_rooms,
            limits.max_room_conns,
            limits.max_frame,
            Arc::clone(&stats),
        );
        hub.set_remote_hold(limits.slow_reader_timeout);
        let backplane_stop = CancellationToken::new();
        let backplane = match &config.backplane {
            None => None,
            Some(opts) => {
                let (handle, pending) =
                    crate::backplane::start(opts, relay_id(), backplane_stop.clone()).await?;
                info!(
                    relay = handle.relay(),
                    servers = %opts
                        .servers
                        .iter()
                        .map(|s| crate::backplane::shown(s))
                        .collect::<Vec<_>>()
                        .join(","),
                    "sharing rooms with other relays over NATS"
                );
                hub.set_backplane(handle);
                Some(pending)
            }
        };
        Ok(Relay {
            listener,
            admission: Admission::new(limits.max_conns, limits.max_conns_per_ip),
            shared: Shared {
                hub,
                stats,
                budget: crate::queue::Budget::new(limits.max_queued),
                limits,
                acceptor: Arc::new(acceptor),
                shutdown: CancellationToken::new(),
            },
            fingerprint,
            config,
            backplane,
            backplane_stop,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// SHA-256 of the certificate, lowercase hex.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The counters (for tests and the stats line).
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.shared.stats)
    }

    /// What every connection's queue holds, against the configured total.
    pub fn budget(&self) -> Arc<crate::queue::Budget> {
        Arc::clone(&self.shared.budget)
    }

    /// Serves until `stop` is cancelled, then closes every connection with a
    /// going-away frame and waits up to the shutdown grace for them.
    pub async fn run(self, stop: CancellationToken) -> Result<()> {
        let Relay {
            listener,
            shared,
            admission,
            config,
            backplane,
            backplane_stop,
            ..
        } = self;
        // One shared copy: each connection's task holds a pointer, not the
        // limits themselves.
        let shared = Arc::new(shared);
        // However this returns, every connection is told to close.
        let _closing = shared.shutdown.clone().drop_guard();
        let tracker = TaskTracker::new();
        let _backplane_guard = backplane_stop.clone().drop_guard();
        let backplane = backplane.map(|bp| tokio::spawn(bp.run(shared.hub.clone())));
        if let Some(every) = config.stats_interval {
            tracker.spawn(stats_ticker(
                Arc::clone(&shared),
                Arc::clone(&admission),
                every,
            ));
        }
        // Admission (accept, handshake, hello) runs on a runtime of its own;
        // each connection that said hello moves to this one, where it joins
        // its room. A flood of handshakes then queues behind itself, not in
        // front of the rooms' frames.
        let listener = listener.into_std()?;
        let admission_rt = AdmissionRuntime::start()?;
        let chat = conn::Chat {
            handle: tokio::runtime::Handle::current(),
            tracker: tracker.clone(),
        };
        let accepting = admission_rt.spawn(accept_loop(
            listener,
            Arc::clone(&shared),
            Arc::clone(&admission),
            chat,
            stop.clone(),
        ));
        match accepting.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => anyhow::bail!("the accept loop ended: {e}"),
        }
        info!(
            connections = admission.total(),
            "shutting down: closing connections"
        );
        shared.shutdown.cancel();
        tracker.close();
        if tokio::time::timeout(config.shutdown_grace, tracker.wait())
            .await
            .is_err()
        {
            warn!("some connections did not close within the shutdown grace");
        }
        // The other relays hear at once that our connections left.
        backplane_stop.cancel();
        if let Some(task) = backplane {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
        }
        info!(closes = %shared.stats.closes_summary(), "relay stopped");
        Ok(())
    }
}

/// Accepts until `stop`; each connection's task starts on this (the
/// admission) runtime.
async fn accept_loop(
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    admission: Arc<Admission>,
    chat: conn::Chat,
    stop: CancellationToken,
) -> Result<()> {
    let listener = TcpListener::from_std(listener)?;
    let refusals = Arc::new(tokio::sync::Semaphore::new(REFUSALS_IN_FLIGHT));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off briefly.
                warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        shared.stats.accepted.fetch_add(1, Relaxed);
        // Admitted connections hold their place (total and per address)
        // from accept to close; refused ones share a small pool of their
        // own for a short handshake and a reason, or are closed at once.
        let slot = admission.admit(peer.ip());
        let permit = match &slot {
            Ok(_) => None,
            Err(_) => match Arc::clone(&refusals).try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    drop(tcp);
                    shared.stats.closed(crate::stats::CloseReason::Refused);
                    continue;
                }
            },
        };
        chat.tracker.spawn(conn::serve(
            Arc::clone(&shared),
            tcp,
            peer,
            slot,
            permit,
            chat.clone(),
        ));
    }
}

/// The admission runtime: as many workers as the chat runtime (a burst of
/// newcomers is admitted on every core), at the same CPU priority (a lower
/// one was measured: it slowed joins into a busy room by a sixth and did
/// not help the rooms); shut down (its tasks dropped) with its guard.
struct AdmissionRuntime {
    handle: tokio::runtime::Handle,
    rt: Option<tokio::runtime::Runtime>,
}

impl AdmissionRuntime {
    fn start() -> Result<AdmissionRuntime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .thread_name("relay-admission")
            .enable_all()
            .build()
            .context("cannot start the admission runtime")?;
        Ok(AdmissionRuntime {
            handle: rt.handle().clone(),
            rt: Some(rt),
        })
    }

    fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(f)
    }
}

impl Drop for AdmissionRuntime {
    fn drop(&mut self) {
        // Allowed inside an async context, unlike dropping a runtime.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

async fn stats_ticker(shared: Arc<Shared>, admission: Arc<Admission>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let s = &shared.stats;
        info!(
            connections = admission.total(),
            rooms = shared.hub.room_count(),
            accepted = s.accepted.load(Relaxed),
            frames_in = s.frames_in.load(Relaxed),
            bytes_in = s.bytes_in.load(Relaxed),
            frames_out = s.frames_out.load(Relaxed),
            bytes_out = s.bytes_out.load(Relaxed),
            closes = %s.closes_summary(),
            "stats"
        );
    }
}

/// A random id for this relay's run (the high half of its connection ids
/// on a backplane): never 0.
fn relay_id() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    (h.finish() as u32).max(1)
}

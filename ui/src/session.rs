//! The network side of a window: the driver runs on a tokio runtime (never
//! on the UI thread); its updates reach the window through
//! `slint::invoke_from_event_loop`, and the window's commands go back over a
//! bounded channel.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use client::driver::{self, Request, Trust, Update};
use common::engine::{Command, Engine};
use common::invite::RelayEndpoint;
use common::RoomId;
use tokio::sync::mpsc;

/// Commands waiting for the driver; more than this and the UI says "busy".
pub const COMMAND_QUEUE: usize = 256;
/// Driver updates applied to the window in one go, at most.
pub const MAX_BATCH: usize = 256;

/// Where a session's driver updates go, a batch at a time, on the UI
/// thread.
pub type Route = Rc<dyn Fn(Vec<Update>)>;

thread_local! {
    // The UI thread's routes, by session: a batch of updates from the
    // network side names its session (a number, which can cross threads),
    // and finds here what applies it. A session that ended has none.
    static ROUTES: RefCell<HashMap<u64, Route>> = RefCell::new(HashMap::new());
}

/// Hands `batch` to session `id`'s route (none: the room was left).
fn deliver(id: u64, batch: Vec<Update>) {
    // Taken out first: applying an update may start or end a session.
    let Some(route) = ROUTES.with(|r| r.borrow().get(&id).cloned()) else {
        return;
    };
    route(batch);
}

/// One room's connection: its driver, and the channel its commands take.
#[derive(Debug)]
pub struct Session {
    id: u64,
    runtime: Option<tokio::runtime::Handle>,
    options: RefCell<driver::Options>,
    commands: RefCell<Option<Commands>>,
    driver: RefCell<Option<tokio::task::JoinHandle<()>>>,
}

/// Where a session's commands go.
#[derive(Debug)]
enum Commands {
    /// To its driver.
    Driver(mpsc::Sender<Request>),
    /// To a test's channel, with the room they are for.
    Test(mpsc::Sender<(RoomId, Request)>, RoomId),
}

impl Commands {
    fn try_send(&self, req: Request) -> Result<(), String> {
        let full = |full: bool| {
            if full {
                "the connection is busy: try again in a moment".to_string()
            } else {
                "the connection has stopped".to_string()
            }
        };
        match self {
            Commands::Driver(tx) => tx
                .try_send(req)
                .map_err(|e| full(matches!(e, mpsc::error::TrySendError::Full(_)))),
            Commands::Test(tx, room) => tx
                .try_send((*room, req))
                .map_err(|e| full(matches!(e, mpsc::error::TrySendError::Full(_)))),
        }
    }

    /// Sends, waiting for room in a full queue (the goodbye matters).
    async fn send(self, req: Request) {
        match self {
            Commands::Driver(tx) => {
                let _ = tx.send(req).await;
            }
            Commands::Test(..) => {
                let _ = self.try_send(req);
            }
        }
    }
}

/// Sessions are numbered for their routes.
fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl Session {
    /// A session whose driver will run on `runtime`.
    pub fn new(runtime: tokio::runtime::Handle) -> Self {
        Session {
            id: next_id(),
            runtime: Some(runtime),
            options: RefCell::default(),
            commands: RefCell::new(None),
            driver: RefCell::new(None),
        }
    }

    /// A session without a network whose commands go to `commands`, with
    /// `room` beside each (for tests of the UI alone).
    pub fn detached(commands: mpsc::Sender<(RoomId, Request)>, room: RoomId) -> Self {
        Session {
            id: next_id(),
            runtime: None,
            options: RefCell::default(),
            commands: RefCell::new(Some(Commands::Test(commands, room))),
            driver: RefCell::new(None),
        }
    }

    /// Files (where they go, limits, pace) and history, for the driver
    /// started next.
    pub fn set_options(&self, options: driver::Options) {
        *self.options.borrow_mut() = options;
    }

    /// Whether a driver (or a test channel) takes commands.
    pub fn is_started(&self) -> bool {
        self.commands.borrow().is_some()
    }

    /// Starts the driver for `engine`; its updates reach `route` in
    /// batches, on Slint's event loop.
    pub fn start(
        &self,
        route: Route,
        engine: Engine,
        relays: Vec<RelayEndpoint>,
        trust: Trust,
    ) -> Result<(), String> {
        let Some(rt) = &self.runtime else {
            // A detached session (UI tests): commands already go to the
            // test's channel and updates come from the test.
            return if self.is_started() {
                Ok(())
            } else {
                Err("no network runtime".into())
            };
        };
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let (up_tx, mut up_rx) = mpsc::channel::<Update>(1024);
        let options = self.options.borrow().clone();
        self.set_route(route);
        let handle = rt.spawn(driver::run_with(
            engine, relays, trust, options, cmd_rx, up_tx,
        ));
        let id = self.id;
        rt.spawn(async move {
            // Updates go over in batches, one batch in flight at a time: the
            // next waits until the UI thread has applied the last, so a flood
            // backs up in the bounded channel (and the driver), never in the
            // event loop's queue.
            while let Some(first) = up_rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match up_rx.try_recv() {
                        Ok(u) => batch.push(u),
                        Err(_) => break,
                    }
                }
                let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
                let posted = slint::invoke_from_event_loop(move || {
                    deliver(id, batch);
                    let _ = done_tx.send(());
                });
                if posted.is_err() || done_rx.await.is_err() {
                    break; // the event loop is gone: the app is closing
                }
            }
        });
        *self.commands.borrow_mut() = Some(Commands::Driver(cmd_tx));
        *self.driver.borrow_mut() = Some(handle);
        Ok(())
    }

    /// Hands a request (or an engine command) to the driver without
    /// blocking the UI.
    pub fn send(&self, req: impl Into<Request>) -> Result<(), String> {
        let guard = self.commands.borrow();
        let Some(tx) = guard.as_ref() else {
            return Err("not connected to a room".into());
        };
        tx.try_send(req.into())
    }

    /// Leaves the room cleanly (the others are told) and waits up to
    /// `grace` for the driver to finish. Call after the window closed.
    /// True when the driver finished in time (or there was none).
    pub fn leave(&self, grace: Duration) -> bool {
        ROUTES.with(|r| r.borrow_mut().remove(&self.id));
        let tx = self.commands.borrow_mut().take();
        let driver = self.driver.borrow_mut().take();
        match (&self.runtime, driver) {
            (Some(rt), Some(d)) => rt.block_on(async {
                tokio::time::timeout(grace, async {
                    if let Some(tx) = tx {
                        tx.send(Command::Leave.into()).await;
                    }
                    let _ = d.await;
                })
                .await
                .is_ok()
            }),
            _ => {
                if let Some(tx) = tx {
                    let _ = tx.try_send(Command::Leave.into());
                }
                true
            }
        }
    }

    /// Leaves the room (the others are told) while the window goes on: the
    /// goodbye and the driver's end happen on the runtime, within `grace`,
    /// and nothing more of this room reaches the window. The task doing it
    /// is returned (to wait for at exit).
    pub fn leave_in_background(&self, grace: Duration) -> Option<tokio::task::JoinHandle<()>> {
        ROUTES.with(|r| r.borrow_mut().remove(&self.id));
        let tx = self.commands.borrow_mut().take();
        let driver = self.driver.borrow_mut().take();
        match (&self.runtime, driver) {
            (Some(rt), Some(mut d)) => Some(rt.spawn(async move {
                let ended = tokio::time::timeout(grace, async {
                    if let Some(tx) = tx {
                        tx.send(Command::Leave.into()).await;
                    }
                    let _ = (&mut d).await;
                })
                .await;
                if ended.is_err() {
                    d.abort();
                }
            })),
            _ => {
                if let Some(tx) = tx {
                    let _ = tx.try_send(Command::Leave.into());
                }
                None
            }
        }
    }

    /// Where this session's updates go from now on.
    fn set_route(&self, route: Route) {
        ROUTES.with(|r| r.borrow_mut().insert(self.id, route));
    }

    /// The runtime the driver runs on (none when detached).
    pub fn runtime(&self) -> Option<&tokio::runtime::Handle> {
        self.runtime.as_ref()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // (Not during the thread's own end, when the table may be gone.)
        let _ = ROUTES.try_with(|r| {
            if let Ok(mut r) = r.try_borrow_mut() {
                r.remove(&self.id);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_reaches_its_own_room_and_nothing_reaches_a_room_left() {
        let (tx, _rx) = mpsc::channel(4);
        let a = Session::detached(tx.clone(), RoomId([1; 16]));
        let b = Session::detached(tx, RoomId([2; 16]));
        let got: Rc<RefCell<Vec<(char, usize)>>> = Rc::default();
        for (s, name) in [(&a, 'a'), (&b, 'b')] {
            let got = got.clone();
            s.set_route(Rc::new(move |batch: Vec<Update>| {
                got.borrow_mut().push((name, batch.len()));
            }));
        }
        deliver(a.id, vec![Update::HistoryCleared, Update::HistoryCleared]);
        deliver(b.id, vec![Update::HistoryCleared]);
        assert_eq!(*got.borrow(), vec![('a', 2), ('b', 1)]);
        // Left: a batch already on its way finds no route.
        let b_id = b.id;
        assert!(b.leave_in_background(Duration::from_secs(1)).is_none());
        deliver(b_id, vec![Update::HistoryCleared]);
        // Dropped (the window let the room go).
        let a_id = a.id;
        drop(a);
        deliver(a_id, vec![Update::HistoryCleared]);
        assert_eq!(got.borrow().len(), 2, "{:?}", got.borrow());
    }
}

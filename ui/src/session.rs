//! The network side of a window: the driver runs on a tokio runtime (never
//! on the UI thread); its updates reach the window through
//! `slint::invoke_from_event_loop`, and the window's commands go back over a
//! bounded channel.

use std::cell::RefCell;
use std::time::Duration;

use common::driver::{self, Trust, Update};
use common::engine::{Command, Engine};
use common::invite::RelayEndpoint;
use tokio::sync::mpsc;

use crate::room::{self, RoomWindow};

/// Commands waiting for the driver; more than this and the UI says "busy".
pub const COMMAND_QUEUE: usize = 256;

/// One window's connection to its room.
#[derive(Debug)]
pub struct Session {
    runtime: Option<tokio::runtime::Handle>,
    commands: RefCell<Option<mpsc::Sender<Command>>>,
    driver: RefCell<Option<tokio::task::JoinHandle<()>>>,
}

impl Session {
    /// A session whose driver will run on `runtime`.
    pub fn new(runtime: tokio::runtime::Handle) -> Self {
        Session {
            runtime: Some(runtime),
            commands: RefCell::new(None),
            driver: RefCell::new(None),
        }
    }

    /// A session without a network whose commands go to `commands` (for
    /// tests of the UI alone).
    pub fn detached(commands: mpsc::Sender<Command>) -> Self {
        Session {
            runtime: None,
            commands: RefCell::new(Some(commands)),
            driver: RefCell::new(None),
        }
    }

    /// Whether a driver (or a test channel) takes commands.
    pub fn is_started(&self) -> bool {
        self.commands.borrow().is_some()
    }

    /// Starts the driver for `engine` and routes its updates to `win`.
    pub fn start<T: RoomWindow>(
        &self,
        win: &T,
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
        let handle = rt.spawn(driver::run(engine, relays, trust, cmd_rx, up_tx));
        let weak = win.as_weak();
        rt.spawn(async move {
            while let Some(u) = up_rx.recv().await {
                let w = weak.clone();
                let posted = slint::invoke_from_event_loop(move || {
                    if let Some(win) = w.upgrade() {
                        room::apply(&win, u);
                    }
                });
                if posted.is_err() {
                    break; // the event loop is gone: the app is closing
                }
            }
        });
        *self.commands.borrow_mut() = Some(cmd_tx);
        *self.driver.borrow_mut() = Some(handle);
        Ok(())
    }

    /// Hands a command to the driver without blocking the UI.
    pub fn send(&self, cmd: Command) -> Result<(), String> {
        let guard = self.commands.borrow();
        let Some(tx) = guard.as_ref() else {
            return Err("not connected to a room".into());
        };
        tx.try_send(cmd).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => {
                "the connection is busy: try again in a moment".to_string()
            }
            mpsc::error::TrySendError::Closed(_) => "the connection has stopped".to_string(),
        })
    }

    /// Leaves the room cleanly (the others are told) and waits up to
    /// `grace` for the driver to finish. Call after the window closed.
    pub fn leave(&self, grace: Duration) {
        let tx = self.commands.borrow_mut().take();
        let driver = self.driver.borrow_mut().take();
        if let Some(tx) = tx {
            let _ = tx.try_send(Command::Leave);
        }
        if let (Some(rt), Some(d)) = (&self.runtime, driver) {
            let _ = rt.block_on(async { tokio::time::timeout(grace, d).await });
        }
    }
}

//! A member sees the whole, current, authentic conversation, or is told it
//! isn't (issue 18): each attack of the review played step by step through
//! the in-memory relay, asserting what the victim is shown (roster, lines,
//! warnings) and the epoch in the header of what it sends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../support/mod.rs"]
mod support;

use common::engine::admin::Admin;
use common::engine::member::Member;
use common::engine::{AdminState, Command, Delivery, Engine, Event};
use common::test_keys::key;
use common::wire::{ConnId, Envelope, RelayFrame};
use support::*;
use zeroize::Zeroizing;

mod dropped_lines;
mod findings;
mod recorded;
mod removals;
mod review;
mod rollback_replay;

/// Every envelope node `idx` (on connection `conn`) published from log
/// position `since` on: what the victim sent, whoever it reached.
fn published(net: &Net, conn: ConnId, since: usize) -> Vec<Envelope> {
    let mut seen = std::collections::HashSet::new();
    net.log[since..]
        .iter()
        .filter_map(|(_, f)| match f {
            RelayFrame::Deliver { from, payload } if *from == conn => seen
                .insert(payload.clone())
                .then(|| envelope_of(f))
                .flatten(),
            _ => None,
        })
        .collect()
}

/// The epochs in the headers of the chat messages in `envs`.
fn message_epochs(envs: &[Envelope]) -> Vec<u64> {
    envs.iter()
        .filter_map(|e| match e {
            Envelope::Message(m) => Some(m.header.epoch),
            _ => None,
        })
        .collect()
}

/// Names in node `idx`'s current roster.
fn roster(net: &Net, idx: usize) -> Vec<String> {
    net.nodes[idx]
        .engine
        .members()
        .into_iter()
        .map(|m| m.name)
        .collect()
}

fn errors(net: &Net, idx: usize) -> Vec<String> {
    net.nodes[idx]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Error { reason } => Some(reason.clone()),
            // A line that may not go now waits in the outbox, and says why.
            Event::Delivery {
                state: Delivery::Waiting(reason) | Delivery::Failed(reason),
                ..
            } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// What the admin engine at node 0 asks the driver to keep.
fn admin_state(net: &mut Net) -> AdminState {
    match &mut net.nodes[0].engine {
        Engine::Admin(a) => a.take_state().unwrap_or_default(),
        Engine::Member(_) => panic!("node 0 is the admin"),
    }
}

/// Ticks `ms` in steps of one second, as the driver does.
fn wait(net: &mut Net, ms: u64) {
    for _ in 0..ms / 1_000 {
        net.tick(1_000);
    }
}

/// The gaps node `idx` was told of: (epoch, count).
fn gaps(net: &Net, idx: usize) -> Vec<(u64, u64)> {
    net.nodes[idx]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Missed { epoch, count, .. } => Some((*epoch, *count)),
            _ => None,
        })
        .collect()
}

/// The gaps node `idx` was told of: (sender, count, private).
fn missed(net: &Net, idx: usize) -> Vec<(String, u64, bool)> {
    net.nodes[idx]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Missed {
                from,
                count,
                private,
                ..
            } => Some((from.name.clone(), *count, *private)),
            _ => None,
        })
        .collect()
}

/// A relay that delivers nothing from the admin to `victims`.
fn cut_admin_from(net: &mut Net, victims: Vec<usize>) {
    let admin_conn = net.nodes[0].conn;
    net.tamper = Some(Box::new(move |f: &mut Flight| match &f.1 {
        RelayFrame::Deliver { from, .. } if *from == admin_conn && victims.contains(&f.0) => {
            vec![]
        }
        _ => vec![f.clone()],
    }));
}

//! Time for a member to join over real TLS on loopback (TLS, knock,
//! announce, join request, roster approval, signed epoch, unwrap, roster),
//! beside a bare TLS handshake to the same relay in the same run.
//! Goal: under 50 ms.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use client::driver::{self, Trust, Update};
use common::engine::admin::Admin;
use common::engine::member::Member;
use common::engine::{AdminConfig, Command, Engine, Event, MemberConfig};
use common::invite::{Host, RelayEndpoint};
use common::test_keys::shared;
use relay::testing::{test_limits, TestRelay};
use tokio::sync::mpsc;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Waits for the epoch with `members` members; returns when the driver
/// started connecting (after its one-time TLS setup).
async fn wait_epoch(up: &mut mpsc::Receiver<Update>, members: usize) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut connecting = None;
    loop {
        match tokio::time::timeout_at(deadline, up.recv()).await {
            Ok(Some(Update::Engine(Event::Epoch { members: m, .. }))) if m.len() == members => {
                return connecting
            }
            Ok(Some(Update::Connecting { .. })) => connecting = connecting.or(Some(Instant::now())),
            Ok(Some(Update::Stopped { reason })) => panic!("stopped: {reason}"),
            Ok(Some(_)) => {}
            _ => panic!("no epoch with {members} members in time"),
        }
    }
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let rounds = if quick { 2 } else { 25 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let relay = TestRelay::start(test_limits()).await;
        let ep = RelayEndpoint {
            host: Host::V4(std::net::Ipv4Addr::LOCALHOST),
            port: relay.addr.port(),
            cert: relay.fingerprint.parse().unwrap(),
        };
        let room = common::crypto::random_room_id();
        let admin_key = shared(4);
        let admin_fp = admin_key.public().fingerprint();
        let mut roster = HashSet::new();
        roster.insert(shared(0).public().fingerprint());
        let cfg = AdminConfig {
            room,
            room_name: "bench".into(),
            admin_name: "admin".into(),
            password: None,
            roster,
            rekey_after_messages: 0,
            rekey_after_ms: 0,
            state: Default::default(),
        };
        let (_admin_cmd, admin_rx) = mpsc::channel(4);
        let (admin_tx, mut admin_up) = mpsc::channel(1024);
        tokio::spawn(driver::run(Engine::Admin(Box::new(Admin::new(cfg, admin_key))), vec![ep.clone()], Trust::Pinned, admin_rx, admin_tx));
        wait_epoch(&mut admin_up, 1).await;
        tokio::spawn(async move { while admin_up.recv().await.is_some() {} });

        let mut joins = Vec::new();
        let mut starts = Vec::new();
        let mut handshakes = Vec::new();
        let connector = driver::Connector::new(&Trust::Pinned).unwrap();
        for _ in 0..rounds {
            let t = Instant::now();
            let s = connector.connect(&ep).await.unwrap();
            handshakes.push(t.elapsed());
            drop(s);

            let cfg = MemberConfig {
                room,
                admin_pin: admin_fp,
                name: "bench".into(),
                password: None,
                min_run: 0,
            };
            let (cmd, cmd_rx) = mpsc::channel(4);
            let (tx, mut up) = mpsc::channel(256);
            let t = Instant::now();
            tokio::spawn(driver::run(Engine::Member(Box::new(Member::new(cfg, shared(0)))), vec![ep.clone()], Trust::Pinned, cmd_rx, tx));
            let connecting = wait_epoch(&mut up, 2).await.unwrap();
            starts.push(t.elapsed());
            joins.push(connecting.elapsed());
            cmd.send(Command::Leave.into()).await.unwrap();
            while let Some(u) = up.recv().await {
                if matches!(u, Update::Stopped { .. }) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (j, st, h) = (median(joins), median(starts), median(handshakes));
        println!("member join over TLS on loopback, median of {rounds}:");
        println!("  join (TCP, TLS, knock, announce, request, roster approval, epoch, unwrap): {:>7.1} ms", j.as_secs_f64() * 1e3);
        println!("  the same from app start (includes the one-time TLS library setup):       {:>7.1} ms", st.as_secs_f64() * 1e3);
        println!("  bare TLS handshake with certificate pin, same relay:                  {:>7.1} ms", h.as_secs_f64() * 1e3);
        println!("  ratio join / handshake:                                                 {:>5.1}x", j.as_secs_f64() / h.as_secs_f64());
        if !quick {
            println!("goal: join under 50 ms: {}", if j < Duration::from_millis(50) { "met" } else { "NOT met" });
        }
        relay.stop.cancel();
    });
}

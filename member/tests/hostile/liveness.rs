//! A dead or half-open link to the relay is found within the stated bound
//! (`driver::Liveness`), and a quiet room on a live relay is never taken
//! for one. This relay never pings anyone: only the app's own keepalive
//! keeps a quiet link alive.

use super::*;

use client::driver::{self, Liveness, Update};

/// Short bounds, so that the tests take seconds.
const FAST: Liveness = Liveness {
    keepalive: Duration::from_millis(300),
    silence: Duration::from_millis(1500),
};

/// Carol, with the short bounds, in the room of `r` (seated).
async fn carol(r: &mut Room) -> Peer {
    let admin = shared(4).public().fingerprint();
    let opts = driver::Options {
        files: files_in(r.dirs[2].path(), MAX_FILE, MAX_FILE),
        liveness: FAST,
        ..driver::Options::default()
    };
    let mut carol = Peer::start_with(
        member_engine(r.id, admin, "carol", 2, Some("pw")),
        vec![r.relay.endpoint()],
        opts,
    );
    carol
        .expect("carol's epoch", |e| matches!(e, Event::Epoch { .. }))
        .await;
    carol
}

/// Waits `d`, failing if carol is disconnected meanwhile.
async fn never_disconnected(carol: &mut Peer, d: Duration) {
    let until = tokio::time::Instant::now() + d;
    loop {
        match tokio::time::timeout_at(until, carol.up.recv()).await {
            Err(_) => return,
            Ok(Some(Update::Disconnected { reason, .. })) => {
                panic!("carol was disconnected from a live relay: {reason}")
            }
            Ok(Some(Update::Engine(e))) => carol.seen.push(e),
            Ok(Some(_)) => {}
            Ok(None) => panic!("carol's driver stopped"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_room_on_a_live_relay_is_never_taken_for_a_dead_link() {
    let mut r = room().await;
    let mut carol = carol(&mut r).await;
    // Four times the silence bound with nobody saying anything, on a relay
    // that never pings: carol's own pings keep the link known alive.
    let before = r.relay.pings();
    never_disconnected(&mut carol, FAST.silence * 4).await;
    let pinged = r.relay.pings() - before;
    assert!(pinged >= 3, "only {pinged} pings in {:?}", FAST.silence * 4);
    r.alice.say("still there?").await;
    carol
        .expect(
            "carol reads alice",
            |e| matches!(e, Event::Message { text, .. } if text == "still there?"),
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_open_link_is_found_within_the_bound_and_the_member_comes_back() {
    let mut r = room().await;
    let mut carol = carol(&mut r).await;
    carol.seen.clear();
    let cut = std::time::Instant::now();
    r.relay.freeze_newest();
    let deadline = tokio::time::Instant::now() + WAIT;
    let reason = loop {
        match tokio::time::timeout_at(deadline, carol.up.recv()).await {
            Ok(Some(Update::Disconnected { reason, .. })) => break reason,
            Ok(Some(Update::Engine(e))) => carol.seen.push(e),
            Ok(Some(_)) => {}
            other => panic!("carol never noticed the dead link: {other:?}"),
        }
    };
    let noticed = cut.elapsed();
    assert!(reason.contains("no traffic from the relay"), "{reason}");
    // Within the silence bound and its one-second grace (and some slack
    // for a loaded machine).
    assert!(
        noticed <= FAST.silence + Duration::from_millis(2500),
        "noticed after {noticed:?}"
    );
    // Back in the room on a new connection: what alice says next, she reads.
    carol
        .expect("carol seated again", |e| matches!(e, Event::Epoch { .. }))
        .await;
    r.alice.say("welcome back, carol").await;
    carol
        .expect(
            "carol reads alice again",
            |e| matches!(e, Event::Message { text, .. } if text == "welcome back, carol"),
        )
        .await;
}

/// The invite lists a dead relay first and this one second. Once carol's
/// session here has worked and the relay lets her go, she comes back here
/// first, instead of trying the dead relay again (and, were it a host that
/// drops packets, waiting out its connect timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_working_session_the_relay_that_worked_is_tried_first() {
    let r = room().await;
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        RelayEndpoint {
            host: Host::V4(std::net::Ipv4Addr::LOCALHOST),
            port,
            cert: r.relay.pin,
        }
    };
    let admin = shared(4).public().fingerprint();
    let opts = driver::Options {
        files: files_in(r.dirs[2].path(), MAX_FILE, MAX_FILE),
        ..driver::Options::default()
    };
    let mut carol = Peer::start_with(
        member_engine(r.id, admin, "carol", 2, Some("pw")),
        vec![dead.clone(), r.relay.endpoint()],
        opts,
    );
    carol
        .expect("carol's epoch", |e| matches!(e, Event::Epoch { .. }))
        .await;
    // A session that worked: longer than the driver's stable-session mark.
    tokio::time::sleep(Duration::from_secs(11)).await;
    r.relay.cut_newest(ErrorCode::GoingAway);
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut disconnected = false;
    let next = loop {
        match tokio::time::timeout_at(deadline, carol.up.recv()).await {
            Ok(Some(Update::Disconnected { .. })) => disconnected = true,
            Ok(Some(Update::Connecting { relay })) if disconnected => break relay,
            Ok(Some(Update::Engine(e))) => carol.seen.push(e),
            Ok(Some(_)) => {}
            other => panic!("carol did not reconnect: {other:?}"),
        }
    };
    assert_eq!(
        next,
        r.relay.endpoint().address(),
        "the relay that worked first"
    );
    assert_ne!(next, dead.address());
}

//! The relay lets a member go (it fell behind, or any other reason it
//! gives): the member is told why and comes back.

use super::*;

use client::driver::Update;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_for_falling_behind_is_told_why_and_comes_back() {
    let mut r = room().await;
    // Bob's is the newest connection.
    r.relay.cut_newest(ErrorCode::SlowReader);
    let deadline = tokio::time::Instant::now() + WAIT;
    let (reason, code) = loop {
        match tokio::time::timeout_at(deadline, r.bob.up.recv()).await {
            Ok(Some(Update::Disconnected {
                reason, relay_code, ..
            })) => break (reason, relay_code),
            Ok(Some(Update::Engine(e))) => r.bob.seen.push(e),
            Ok(Some(_)) => {}
            other => panic!("bob was not told he was let go: {other:?}"),
        }
    };
    assert!(reason.contains("you fell behind the room"), "{reason}");
    // The code too, for the terminal's JSON and the window's banner.
    assert_eq!(code, Some(ErrorCode::SlowReader));
    // The relay's own words reach the screen too.
    assert!(
        r.bob.seen.iter().any(
            |e| matches!(e, Event::Error { reason } if reason.contains("too slow to keep up"))
        ),
        "{:?}",
        r.bob.seen
    );
    // Back in the room: what alice says next, he reads.
    r.bob.seen.clear();
    r.bob
        .expect("bob seated again", |e| matches!(e, Event::Epoch { .. }))
        .await;
    r.alice.say("welcome back").await;
    r.bob
        .expect(
            "bob reads alice again",
            |e| matches!(e, Event::Message { text, .. } if text == "welcome back"),
        )
        .await;
}

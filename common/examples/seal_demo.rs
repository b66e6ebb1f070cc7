//! A local, real walk through TeamChat's cryptography, with no network:
//! an admin and a member make RSA-3072 identities, the admin opens an epoch
//! (fresh session key, OAEP wrap, PSS signature), the member verifies then
//! unwraps, and the two exchange sealed messages — one of them tampered with.
//!
//! `cargo run --release -p common --example seal_demo`

use std::time::Instant;

use anyhow::{bail, Context, Result};

use common::crypto::seal::{open, seal, SessionKey};
use common::crypto::{OsRng, PrivateKey, VerifiedEpoch};
use common::invite::{Host, Invite, RelayEndpoint};
use common::wire::{
    aad, context, decode_payload, encode_payload, signed_message_bytes, ChatBody, ChatMessage,
    Content, EpochBody, KeyWrap, MessageHeader, Signed, DEFAULT_MAX_FRAME,
};

fn main() -> Result<()> {
    let t = Instant::now();
    println!("generating two RSA-3072 identities (admin, member)...");
    let admin = PrivateKey::generate(3072).context("admin key")?;
    let member = PrivateKey::generate(3072).context("member key")?;
    println!("  done in {:.1} s", t.elapsed().as_secs_f64());
    println!("admin  fingerprint {}", admin.public().fingerprint());
    println!("admin  safety code {}", admin.public().safety_code());
    println!("member safety code {}", member.public().safety_code());

    let room = common::crypto::random_room_id();
    let relay = RelayEndpoint {
        host: Host::Name("relay.example.net".into()),
        port: 7443,
        cert: common::crypto::fingerprint_of(b"stand-in for the relay certificate DER"),
    };
    let invite = Invite::new(vec![relay], room, admin.public().fingerprint())?;
    println!("\ninvite: {invite}");
    let invite: Invite = invite.to_string().parse()?;

    // Admin: a new epoch with one wrap per member, signed once.
    let epoch = 1;
    let session = SessionKey::generate(&mut OsRng);
    let body = EpochBody {
        room,
        epoch,
        run: [0; 32],
        sent_at_ms: 0,
        wraps: vec![KeyWrap {
            member: member.public().fingerprint(),
            request: [0; 32],
            since: 0,
            before: (0, 0),
            wrapped: member
                .public()
                .wrap_session_key(&room, epoch, &session)
                .into(),
        }],
        roster: vec![[0; 32]],
        lines: vec![],
    };
    let signed = admin.sign_body(&mut OsRng, context::EPOCH, &body, DEFAULT_MAX_FRAME)?;
    let on_wire = encode_payload(&signed, DEFAULT_MAX_FRAME)?;
    println!(
        "\nepoch {epoch}: signed epoch message of {} bytes",
        on_wire.len()
    );

    // Member: the admin key must match the invite's pin and the signature
    // must verify before anything is RSA-decrypted (VerifiedEpoch is the
    // only way to reach the unwrap).
    let signed: Signed = decode_payload(&on_wire, DEFAULT_MAX_FRAME)?;
    let verified = VerifiedEpoch::verify(admin.public(), &invite.admin, &signed, DEFAULT_MAX_FRAME)
        .context("epoch signature")?;
    let my_key = member.unwrap_epoch_key(&verified)?;
    println!("member verified the admin signature, then unwrapped the epoch key");

    // Member sends a signed, sealed message.
    let header = MessageHeader {
        room,
        epoch,
        sender: member.public().fingerprint(),
        seq: 1,
        prev: [(0, 0); 3],
    };
    let encoded_header = encode_payload(&header, DEFAULT_MAX_FRAME)?;
    let plain = ChatBody::padded(0, Content::Text("hello, team 👋".into()));
    let sealed = seal(
        &mut OsRng,
        &my_key.epoch_keys(&room, epoch),
        &aad(context::AAD_MESSAGE, &header),
        &encode_payload(&plain, DEFAULT_MAX_FRAME)?,
    );
    let signature = member.sign(
        &mut OsRng,
        context::MESSAGE,
        &signed_message_bytes(&encoded_header, &sealed),
    );
    let msg = ChatMessage {
        header,
        sealed,
        signature: signature.into(),
    };
    println!(
        "\nmember sends: {} ciphertext bytes",
        msg.sealed.ciphertext.len()
    );

    // Admin receives: verify sender, then open.
    let receive = |m: &ChatMessage| -> Result<String> {
        let encoded_header = encode_payload(&m.header, DEFAULT_MAX_FRAME)?;
        member
            .public()
            .verify(
                context::MESSAGE,
                &signed_message_bytes(&encoded_header, &m.sealed),
                &m.signature,
            )
            .context("sender signature")?;
        let pt = open(
            &session.epoch_keys(&room, m.header.epoch),
            &aad(context::AAD_MESSAGE, &m.header),
            &m.sealed,
        )?;
        match decode_payload::<ChatBody>(&pt, DEFAULT_MAX_FRAME)?.content {
            Content::Text(t) => Ok(t),
            other => bail!("unexpected content {other:?}"),
        }
    };
    println!("admin reads:  {:?}", receive(&msg)?);

    let mut tampered = msg.clone();
    let mut ct = tampered.sealed.ciphertext.to_vec();
    ct[0] ^= 1;
    tampered.sealed.ciphertext = ct.into();
    match receive(&tampered) {
        Ok(t) => bail!("tampered message was accepted: {t:?}"),
        Err(e) => println!("tampered copy: rejected ({e:#})"),
    }
    let mut replayed_elsewhere = msg.clone();
    replayed_elsewhere.header.epoch = 2;
    match receive(&replayed_elsewhere) {
        Ok(t) => bail!("re-labelled message was accepted: {t:?}"),
        Err(e) => println!("copy re-labelled to epoch 2: rejected ({e:#})"),
    }
    Ok(())
}

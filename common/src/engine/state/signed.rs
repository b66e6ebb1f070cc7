//! What a room message and a private message share: the header fields the
//! checks read, the checks before a seal is opened (epoch, roster, replay,
//! signature, in that order), and sealing and signing on the way out.

use super::*;

/// The header of a signed, sealed message of either kind, as the checks
/// both kinds share see it.
pub(crate) trait SignedHeader: serde::Serialize {
    /// Room or private.
    const KIND: Kind;
    /// The sender it names.
    fn sender(&self) -> Fingerprint;
    /// The epoch it was sealed in.
    fn epoch(&self) -> u64;
    /// Its sequence number.
    fn seq(&self) -> u64;
}

/// Both headers name sender, epoch and sequence number in fields of the
/// same names.
macro_rules! signed_header {
    ($header:ty, $kind:expr) => {
        impl SignedHeader for $header {
            const KIND: Kind = $kind;
            fn sender(&self) -> Fingerprint {
                self.sender
            }
            fn epoch(&self) -> u64 {
                self.epoch
            }
            fn seq(&self) -> u64 {
                self.seq
            }
        }
    };
}

signed_header!(MessageHeader, Kind::Message);
signed_header!(crate::wire::PrivateHeader, Kind::Private);

/// What a message passed before it is opened: its epoch, its sender there,
/// and the last sequence number taken from that sender (room or private).
pub(crate) struct Checked<'a> {
    pub state: &'a mut EpochState,
    pub sender: Participant,
    pub last: u64,
}

/// The checks a room and a private message share once room and addressee
/// are right, in order: the epoch it was sealed in ([`epoch_for`]), its
/// sender in that epoch's roster, a sequence number above the last one
/// taken from them, and their signature over the encoded header and the
/// seal (under the kind's context).
pub(crate) fn check_signed<'a, H: SignedHeader>(
    epochs: (&'a mut Option<EpochState>, &'a mut Option<EpochState>),
    now_ms: u64,
    max_frame: usize,
    header: &H,
    sealed: &crate::wire::Sealed,
    signature: &[u8],
) -> Result<Checked<'a>, Dropped> {
    let (kind, from, seq) = (H::KIND, header.sender(), header.seq());
    let state = epoch_for(epochs.0, epochs.1, now_ms, header.epoch(), &from, kind)?;
    let sender = state
        .members
        .get(&from)
        .cloned()
        .ok_or_else(|| Dropped::NotInRoster {
            kind,
            sender: from.short(),
        })?;
    let (taken, context) = match kind {
        Kind::Message => (&state.last_seq, context::MESSAGE),
        Kind::Private => (&state.last_private_seq, context::PRIVATE),
    };
    let last = taken.get(&from).copied().unwrap_or(0);
    if seq <= last {
        return Err(Dropped::Replayed {
            kind,
            name: sender.name,
            seq,
            last,
        });
    }
    let signed = encode_payload(header, max_frame)
        .map(|h| signed_message_bytes(&h, sealed))
        .map_err(|_| Dropped::Malformed {
            kind,
            name: sender.name.clone(),
        })?;
    if sender.key.verify(context, &signed, signature).is_err() {
        return Err(Dropped::BadSignature {
            kind,
            name: sender.name,
        });
    }
    Ok(Checked {
        state,
        sender,
        last,
    })
}

/// `body` sealed under `keys` with `header` as associated data, and header
/// and seal signed by `me`, under the labels of `kind`: what a room and a
/// private message both carry. `None` if either does not fit a frame.
pub(crate) fn seal_signed<H: serde::Serialize>(
    rng: &mut Randomness,
    me: &PrivateKey,
    max_frame: usize,
    kind: Kind,
    keys: &SealKeys,
    header: &H,
    body: &ChatBody,
) -> Option<(crate::wire::Sealed, Bytes)> {
    let (aad_label, context) = match kind {
        Kind::Message => (context::AAD_MESSAGE, context::MESSAGE),
        Kind::Private => (context::AAD_PRIVATE, context::PRIVATE),
    };
    let plain = encode_payload(body, max_frame)
        .map(zeroize::Zeroizing::new)
        .ok()?;
    let sealed = seal(rng, keys, &aad(aad_label, header), &plain);
    let encoded_header = encode_payload(header, max_frame).ok()?;
    let signature = me.sign(
        rng,
        context,
        &signed_message_bytes(&encoded_header, &sealed),
    );
    Some((sealed, signature.into()))
}

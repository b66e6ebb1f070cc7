//! RSA identity keys: public keys as SPKI DER, fingerprints, safety codes,
//! session-key wraps (RSA-OAEP-SHA256) and signatures (RSA-PSS-SHA256).
//!
//! The `rsa` crate carries RUSTSEC-2023-0071 (a timing side channel in
//! decryption, no fix). This module decrypts with blinding, and the protocol
//! calls [`PrivateKey::unwrap_session_key`] only on a wrap whose admin
//! signature has already verified: an attacker cannot choose what we decrypt.

use std::fmt;

use pkcs8::{DecodePublicKey, EncodePublicKey};
use rand_core::{CryptoRngCore, OsRng};
use rsa::pss::{BlindedSigningKey, Signature, VerifyingKey};
use rsa::signature::{RandomizedSigner, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroize;

use super::seal::{SealKeys, SessionKey, KEY_LEN};
use crate::ids::{Fingerprint, RoomId};
use crate::wire::{context, decode_payload, encode_payload, EpochBody, Signed};

/// Smallest RSA modulus TeamChat accepts for an identity, in bits.
pub const MIN_RSA_BITS: usize = 3072;
/// Largest RSA modulus TeamChat accepts, in bits (bounds verification cost).
pub const MAX_RSA_BITS: usize = 4096;
/// Size in bytes of a wrap or a signature made with a 3072-bit key.
pub const RSA3072_BYTES: usize = 384;
/// Largest SPKI DER accepted from the network.
pub const MAX_SPKI_LEN: usize = 1024;

/// What went wrong with a key, a signature or a wrap.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The SPKI bytes do not hold an RSA public key.
    #[error("not an RSA public key (SubjectPublicKeyInfo DER expected)")]
    NotRsaPublicKey,
    /// The modulus is outside what TeamChat accepts.
    #[error("RSA key of {bits} bits refused: {MIN_RSA_BITS} to {MAX_RSA_BITS} bits required")]
    BadSize {
        /// Modulus size found.
        bits: usize,
    },
    /// The public exponent is not 65537.
    #[error("RSA public exponent refused: TeamChat keys use e = 65537")]
    BadExponent,
    /// A private key whose parts do not fit together (a damaged file).
    #[error("the RSA private key is inconsistent (damaged key file?)")]
    InconsistentPrivateKey,
    /// The admin key is not the one pinned by the invite.
    #[error("the admin key does not match the fingerprint pinned by the invite")]
    NotPinnedAdmin,
    /// A signed body did not decode.
    #[error("malformed signed body")]
    Malformed,
    /// A verified epoch carries no wrap for this key.
    #[error("this epoch has no key for us (not a member)")]
    NotAMember,
    /// RSA key generation failed.
    #[error("RSA key generation failed: {0}")]
    Generate(String),
    /// A signature did not verify (one opaque error).
    #[error("signature verification failed")]
    BadSignature,
    /// A wrapped key could not be unwrapped (one opaque error).
    #[error("key unwrap failed")]
    Unwrap,
}

/// An RSA public key with its SPKI encoding and fingerprint, checked to be
/// 3072–4096 bits.
#[derive(Clone)]
pub struct PublicKey {
    key: VerifyingKey<Sha256>,
    spki: Vec<u8>,
    fingerprint: Fingerprint,
    /// The same key parsed by OpenSSL, for fast wraps.
    #[cfg(feature = "openssl-wrap")]
    ossl: Option<openssl::pkey::PKey<openssl::pkey::Public>>,
}

impl PublicKey {
    /// Parses a SubjectPublicKeyInfo DER (as carried in join requests and
    /// rosters) and checks the key size.
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        if der.len() > MAX_SPKI_LEN {
            return Err(KeyError::NotRsaPublicKey);
        }
        let key = RsaPublicKey::from_public_key_der(der).map_err(|_| KeyError::NotRsaPublicKey)?;
        check_bits(key.n().bits())?;
        check_exponent(&key)?;
        // Re-encode so that the fingerprint is of the canonical form.
        let spki = key
            .to_public_key_der()
            .map_err(|_| KeyError::NotRsaPublicKey)?
            .into_vec();
        if spki != der {
            return Err(KeyError::NotRsaPublicKey);
        }
        Ok(Self::from_parts(key, spki))
    }

    fn from_rsa(key: RsaPublicKey) -> Result<Self, KeyError> {
        let spki = key
            .to_public_key_der()
            .map_err(|_| KeyError::NotRsaPublicKey)?
            .into_vec();
        Ok(Self::from_parts(key, spki))
    }

    fn from_parts(key: RsaPublicKey, spki: Vec<u8>) -> Self {
        let fingerprint = crate::crypto::fingerprint_of(&spki);
        PublicKey {
            key: VerifyingKey::new(key),
            #[cfg(feature = "openssl-wrap")]
            ossl: openssl::pkey::PKey::public_key_from_der(&spki).ok(),
            spki,
            fingerprint,
        }
    }

    /// The SubjectPublicKeyInfo DER encoding.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// SHA-256 of the SPKI DER.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The human-comparable safety code of this key.
    pub fn safety_code(&self) -> SafetyCode {
        SafetyCode::of(&self.fingerprint)
    }

    /// Modulus size in bits.
    pub fn bits(&self) -> usize {
        self.rsa().n().bits()
    }

    /// The underlying RSA key.
    pub fn rsa(&self) -> &RsaPublicKey {
        self.key.as_ref()
    }

    /// Wraps `key` for this public key with RSA-OAEP-SHA256; the label
    /// binds room and epoch (see [`wrap_label`]). The OAEP seed comes from
    /// the platform: OpenSSL's generator where built with `openssl-wrap`
    /// (ten times faster), otherwise the OS CSPRNG.
    pub fn wrap_session_key(&self, room: &RoomId, epoch: u64, key: &SessionKey) -> Vec<u8> {
        #[cfg(feature = "openssl-wrap")]
        if let Some(w) = self
            .ossl
            .as_ref()
            .and_then(|pk| openssl_oaep_encrypt(pk, &wrap_label(room, epoch), key.expose()))
        {
            return w;
        }
        self.wrap_session_key_with(&mut OsRng, room, epoch, key)
    }

    /// [`PublicKey::wrap_session_key`] with the OAEP seed drawn from `rng`,
    /// through the `rsa` crate: for an engine whose every random byte
    /// comes from a seed.
    pub fn wrap_session_key_with(
        &self,
        rng: &mut impl CryptoRngCore,
        room: &RoomId,
        epoch: u64,
        key: &SessionKey,
    ) -> Vec<u8> {
        let label = wrap_label(room, epoch);
        // Encryption with a valid key and a 32-byte message cannot fail.
        oaep_encrypt(rng, self.rsa(), Some(&label), key.expose())
            .unwrap_or_else(|_| unreachable!("OAEP encryption of 32 bytes under a checked key"))
    }

    /// Verifies an RSA-PSS-SHA256 signature made by [`PrivateKey::sign`]
    /// with the same `context`.
    pub fn verify(&self, context: &str, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        let signed = signing_input(context, message);
        pss_verify(&self.key, &signed, signature)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.spki == other.spki
    }
}
impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PublicKey(rsa{}, {})",
            self.bits(),
            self.fingerprint.short()
        )
    }
}

/// An RSA private key (an identity). Zeroized on drop by the `rsa` crate;
/// not `Clone`; its `Debug` prints only the fingerprint.
pub struct PrivateKey {
    key: BlindedSigningKey<Sha256>,
    public: PublicKey,
}

impl PrivateKey {
    /// Generates a fresh RSA key of `bits` bits from the OS CSPRNG.
    pub fn generate(bits: usize) -> Result<Self, KeyError> {
        check_bits(bits)?;
        let key =
            RsaPrivateKey::new(&mut OsRng, bits).map_err(|e| KeyError::Generate(e.to_string()))?;
        Self::from_rsa(key)
    }

    /// Wraps an already-parsed RSA key, checking its size and consistency.
    pub fn from_rsa(key: RsaPrivateKey) -> Result<Self, KeyError> {
        check_bits(key.n().bits())?;
        check_exponent(&key)?;
        key.validate()
            .map_err(|_| KeyError::InconsistentPrivateKey)?;
        let public = PublicKey::from_rsa(key.to_public_key())?;
        Ok(PrivateKey {
            key: BlindedSigningKey::new(key),
            public,
        })
    }

    /// The matching public key.
    pub fn public(&self) -> &PublicKey {
        &self.public
    }

    /// Keys for the local history database, derived with HKDF-SHA256 from
    /// this key's secret exponent: only this identity (unlocked with its
    /// passphrase, if it has one) can derive them, and no RSA operation is
    /// involved. Returns the seal keys of the rows and the keys that tag
    /// room ids.
    pub fn history_keys(&self) -> (SealKeys, SealKeys) {
        use rsa::traits::PrivateKeyParts;
        let mut d = self.rsa().d().to_bytes_be();
        let rows = SealKeys::derive(&d, b"teamchat/v1/hkdf/history");
        let tags = SealKeys::derive(&d, b"teamchat/v1/hkdf/history-tags");
        d.zeroize();
        (rows, tags)
    }

    /// Keys of the admin's state file for a room (run number, bans),
    /// derived like [`PrivateKey::history_keys`] but for their own purpose.
    pub fn admin_state_keys(&self) -> SealKeys {
        use rsa::traits::PrivateKeyParts;
        let mut d = self.rsa().d().to_bytes_be();
        let keys = SealKeys::derive(&d, b"teamchat/v1/hkdf/admin-state");
        d.zeroize();
        keys
    }

    /// The underlying key, for the identity module's PKCS#8 encoding.
    pub(crate) fn rsa(&self) -> &RsaPrivateKey {
        self.key.as_ref()
    }

    /// Signs `context ‖ 0x00 ‖ message` with blinded RSA-PSS-SHA256 (salt 32
    /// bytes; salt and blinding from `rng`). Each protocol message type uses its own `context` string, so a
    /// signature can never be replayed as another kind of statement.
    pub fn sign(&self, rng: &mut impl CryptoRngCore, context: &str, message: &[u8]) -> Vec<u8> {
        pss_sign(rng, &self.key, &signing_input(context, message))
    }

    /// Encodes `body`, signs it under `context`, and returns both.
    pub fn sign_body<T: serde::Serialize>(
        &self,
        rng: &mut impl CryptoRngCore,
        context: &str,
        body: &T,
        max: usize,
    ) -> Result<Signed, KeyError> {
        let body = encode_payload(body, max).map_err(|_| KeyError::Malformed)?;
        let signature = self.sign(rng, context, &body);
        Ok(Signed {
            body: body.into(),
            signature: signature.into(),
        })
    }

    /// Unwraps this key's session key from an epoch whose admin signature
    /// has verified. The type is the guard of RUSTSEC-2023-0071: there is no
    /// way to RSA-decrypt bytes that did not come signed by the pinned admin.
    pub fn unwrap_epoch_key(&self, epoch: &VerifiedEpoch) -> Result<SessionKey, KeyError> {
        let me = self.public.fingerprint();
        let body = epoch.body();
        let wrap = body
            .wraps
            .iter()
            .find(|w| w.member == me)
            .ok_or(KeyError::NotAMember)?;
        self.unwrap_session_key(&body.room, body.epoch, &wrap.wrapped)
    }

    /// Unwraps a session key wrapped for this key in `room` at `epoch`; any
    /// failure is one opaque error. Crate-private: reached from outside only
    /// through [`PrivateKey::unwrap_epoch_key`] (and the test-support module).
    pub(crate) fn unwrap_session_key(
        &self,
        room: &RoomId,
        epoch: u64,
        wrapped: &[u8],
    ) -> Result<SessionKey, KeyError> {
        let mut pt = oaep_decrypt(self.rsa(), Some(&wrap_label(room, epoch)), wrapped)
            .map_err(|_| KeyError::Unwrap)?;
        if pt.len() != KEY_LEN {
            pt.zeroize();
            return Err(KeyError::Unwrap);
        }
        let mut bytes = [0u8; KEY_LEN];
        bytes.copy_from_slice(&pt);
        pt.zeroize();
        let key = SessionKey::from_bytes(bytes);
        bytes.zeroize();
        Ok(key)
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PrivateKey(rsa{}, {})",
            self.public.bits(),
            self.public.fingerprint.short()
        )
    }
}

/// An epoch message whose signature by the admin key pinned in the invite
/// has verified, with its body decoded. Only [`VerifiedEpoch::verify`]
/// builds one.
#[derive(Debug)]
pub struct VerifiedEpoch {
    body: EpochBody,
}

impl VerifiedEpoch {
    /// Checks that `admin` is the pinned key, verifies the signature
    /// (context `teamchat/v1/epoch`), then decodes the body.
    pub fn verify(
        admin: &PublicKey,
        pinned: &Fingerprint,
        signed: &Signed,
        max: usize,
    ) -> Result<Self, KeyError> {
        if !crate::crypto::same_fingerprint(&admin.fingerprint(), pinned) {
            return Err(KeyError::NotPinnedAdmin);
        }
        admin.verify(context::EPOCH, &signed.body, &signed.signature)?;
        let body = decode_payload(&signed.body, max).map_err(|_| KeyError::Malformed)?;
        Ok(VerifiedEpoch { body })
    }

    /// The verified body.
    pub fn body(&self) -> &EpochBody {
        &self.body
    }
}

fn check_exponent(key: &impl PublicKeyParts) -> Result<(), KeyError> {
    if *key.e() == rsa::BigUint::from(65_537u32) {
        Ok(())
    } else {
        Err(KeyError::BadExponent)
    }
}

fn check_bits(bits: usize) -> Result<(), KeyError> {
    if (MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
        Ok(())
    } else {
        Err(KeyError::BadSize { bits })
    }
}

/// The OAEP label of a wrap: `teamchat/v1/wrap room=<32 hex> epoch=<decimal>`.
/// `rsa` 0.9 takes labels as strings, so the binding is text.
pub fn wrap_label(room: &RoomId, epoch: u64) -> String {
    format!("teamchat/v1/wrap room={room} epoch={epoch}")
}

fn signing_input(context: &str, message: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(context.len() + 1 + message.len());
    v.extend_from_slice(context.as_bytes());
    v.push(0);
    v.extend_from_slice(message);
    v
}

/// RSA-PSS-SHA256 (MGF1-SHA256, 32-byte salt), blinded, over `message`.
pub fn pss_sign(
    rng: &mut impl CryptoRngCore,
    key: &BlindedSigningKey<Sha256>,
    message: &[u8],
) -> Vec<u8> {
    let sig: Signature = key.sign_with_rng(rng, message);
    Box::<[u8]>::from(sig).into_vec()
}

/// Verifies an RSA-PSS-SHA256 (MGF1-SHA256, 32-byte salt) signature.
pub fn pss_verify(
    key: &VerifyingKey<Sha256>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), KeyError> {
    if signature.len() != key.as_ref().size() {
        return Err(KeyError::BadSignature);
    }
    let sig = Signature::try_from(signature).map_err(|_| KeyError::BadSignature)?;
    key.verify(message, &sig)
        .map_err(|_| KeyError::BadSignature)
}

/// RSA-OAEP encryption with SHA-256 and MGF1-SHA256.
pub fn oaep_encrypt(
    rng: &mut impl CryptoRngCore,
    key: &RsaPublicKey,
    label: Option<&str>,
    message: &[u8],
) -> Result<Vec<u8>, KeyError> {
    key.encrypt(rng, oaep(label), message)
        .map_err(|_| KeyError::Unwrap)
}

/// RSA-OAEP-SHA256 (MGF1-SHA256) encryption through OpenSSL: the same
/// construction as [`oaep_encrypt`], interoperable with [`oaep_decrypt`]
/// (tested), about ten times faster. `None` if OpenSSL refuses.
#[cfg(feature = "openssl-wrap")]
pub fn openssl_oaep_encrypt(
    key: &openssl::pkey::PKeyRef<openssl::pkey::Public>,
    label: &str,
    message: &[u8],
) -> Option<Vec<u8>> {
    use openssl::md::Md;
    use openssl::pkey_ctx::PkeyCtx;
    use openssl::rsa::Padding;
    let mut ctx = PkeyCtx::new(key).ok()?;
    ctx.encrypt_init().ok()?;
    ctx.set_rsa_padding(Padding::PKCS1_OAEP).ok()?;
    ctx.set_rsa_oaep_md(Md::sha256()).ok()?;
    ctx.set_rsa_mgf1_md(Md::sha256()).ok()?;
    ctx.set_rsa_oaep_label(label.as_bytes()).ok()?;
    let mut out = Vec::new();
    ctx.encrypt_to_vec(message, &mut out).ok()?;
    Some(out)
}

/// RSA-OAEP decryption with SHA-256 and MGF1-SHA256, with blinding.
/// Crate-private: see [`PrivateKey::unwrap_epoch_key`].
pub(crate) fn oaep_decrypt(
    key: &RsaPrivateKey,
    label: Option<&str>,
    ciphertext: &[u8],
) -> Result<Vec<u8>, KeyError> {
    if ciphertext.len() != key.size() {
        return Err(KeyError::Unwrap);
    }
    key.decrypt_blinded(&mut OsRng, oaep(label), ciphertext)
        .map_err(|_| KeyError::Unwrap)
}

fn oaep(label: Option<&str>) -> Oaep {
    match label {
        Some(l) => Oaep::new_with_label::<Sha256, _>(l),
        None => Oaep::new::<Sha256>(),
    }
}

/// A safety code: 60 decimal digits in 12 groups of 5, derived from a key
/// fingerprint, for two people to compare aloud or side by side.
///
/// Digits: SHA-512("teamchat/v1/safety-code" ‖ fingerprint), split into
/// twelve 5-byte chunks, each read as a big-endian integer mod 100000.
/// About 199 bits of the fingerprint survive, far beyond what a forger could
/// match by grinding keys.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SafetyCode([u32; 12]);

impl SafetyCode {
    /// The safety code of a fingerprint.
    pub fn of(fingerprint: &Fingerprint) -> Self {
        let mut h = Sha512::new();
        h.update(b"teamchat/v1/safety-code");
        h.update(fingerprint.as_bytes());
        let digest = h.finalize();
        let mut groups = [0u32; 12];
        for (g, chunk) in groups.iter_mut().zip(digest.chunks_exact(5)) {
            let v = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            *g = (v % 100_000) as u32;
        }
        SafetyCode(groups)
    }

    /// The twelve groups of five digits.
    pub fn groups(&self) -> [String; 12] {
        self.0.map(|g| format!("{g:05}"))
    }
}

impl fmt::Display for SafetyCode {
    /// Three lines of four groups when alternate (`{:#}`), one line otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, g) in self.0.iter().enumerate() {
            if i > 0 {
                let sep = if f.alternate() && i % 4 == 0 {
                    "\n"
                } else {
                    " "
                };
                f.write_str(sep)?;
            }
            write!(f, "{g:05}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for SafetyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SafetyCode({self})")
    }
}

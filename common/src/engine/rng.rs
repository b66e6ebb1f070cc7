//! The engine's randomness: one source, given at construction, from which
//! every random byte the engine puts into a frame is drawn: IVs, session
//! keys, X25519 secrets, knock nonces, private-file secrets, PSS salts and
//! OAEP seeds.
//!
//! In the apps the source is the operating system's CSPRNG, read afresh for
//! each use, so the engine keeps no generator state that could later give
//! away an erased key (P6); an admin built with `openssl-wrap` wraps epoch
//! keys through OpenSSL, whose generator the OS seeds too. With the
//! `test-support` feature an engine can instead draw from a ChaCha20 stream
//! of a 32-byte seed (quinn-proto's `rng_seed` is the model): two engines
//! made with the same seed, fed the same frames, commands and clock, send
//! the same bytes, so a test run replays bit for bit. Its key wraps go
//! through the `rsa` crate, which takes the seed's randomness, rather than
//! OpenSSL's generator, which cannot be seeded. (RSA blinding when a member
//! unwraps a key stays with the OS: it changes no output.)

use std::fmt;

use rand_core::{CryptoRng, OsRng, RngCore};

use crate::crypto::{PublicKey, SessionKey};
use crate::ids::RoomId;

/// Where an engine's random bytes come from. (A clone, which only tests
/// can make, goes on with the same stream: two clones draw the same bytes,
/// as a replay must, and must never both send.)
#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
pub struct Randomness(Source);

#[cfg_attr(any(test, feature = "test-support"), derive(Clone))]
enum Source {
    Os,
    #[cfg(any(test, feature = "test-support"))]
    Seeded(Box<rand_chacha::ChaCha20Rng>),
}

impl Randomness {
    /// The operating system's CSPRNG: what the apps use.
    pub fn os() -> Self {
        Randomness(Source::Os)
    }

    /// A ChaCha20 stream from `seed`, for tests that replay a run (never
    /// for an app: anyone who knows the seed knows every key).
    #[cfg(any(test, feature = "test-support"))]
    pub fn seeded(seed: [u8; 32]) -> Self {
        use rand_core::SeedableRng;
        Randomness(Source::Seeded(Box::new(
            rand_chacha::ChaCha20Rng::from_seed(seed),
        )))
    }

    /// `N` random bytes.
    pub(crate) fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut b = [0u8; N];
        self.fill_bytes(&mut b);
        b
    }

    /// `session` wrapped for `key` in `room` at `epoch`: through the
    /// platform's fast path for the OS source, from the seed otherwise.
    pub(crate) fn wrap(
        &mut self,
        key: &PublicKey,
        room: &RoomId,
        epoch: u64,
        session: &SessionKey,
    ) -> Vec<u8> {
        match &mut self.0 {
            Source::Os => key.wrap_session_key(room, epoch, session),
            #[cfg(any(test, feature = "test-support"))]
            Source::Seeded(rng) => key.wrap_session_key_with(rng.as_mut(), room, epoch, session),
        }
    }
}

impl RngCore for Randomness {
    fn next_u32(&mut self) -> u32 {
        match &mut self.0 {
            Source::Os => OsRng.next_u32(),
            #[cfg(any(test, feature = "test-support"))]
            Source::Seeded(rng) => rng.next_u32(),
        }
    }

    fn next_u64(&mut self) -> u64 {
        match &mut self.0 {
            Source::Os => OsRng.next_u64(),
            #[cfg(any(test, feature = "test-support"))]
            Source::Seeded(rng) => rng.next_u64(),
        }
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        match &mut self.0 {
            Source::Os => OsRng.fill_bytes(dest),
            #[cfg(any(test, feature = "test-support"))]
            Source::Seeded(rng) => rng.fill_bytes(dest),
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        match &mut self.0 {
            Source::Os => OsRng.try_fill_bytes(dest),
            #[cfg(any(test, feature = "test-support"))]
            Source::Seeded(rng) => rng.try_fill_bytes(dest),
        }
    }
}

/// Both sources are cryptographically secure generators.
impl CryptoRng for Randomness {}

impl fmt::Debug for Randomness {
    /// Names the source, never its state.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Source::Os => f.write_str("Randomness(os)"),
            #[cfg(any(test, feature = "test-support"))]
            Source::Seeded(_) => f.write_str("Randomness(seeded)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_seed_gives_one_stream_and_the_os_another_each_time() {
        let (mut a, mut b) = (Randomness::seeded([7; 32]), Randomness::seeded([7; 32]));
        assert_eq!(a.array::<64>(), b.array::<64>());
        assert_ne!(
            Randomness::seeded([8; 32]).array::<32>(),
            Randomness::seeded([7; 32]).array::<32>()
        );
        let mut os = Randomness::os();
        assert_ne!(os.array::<32>(), os.array::<32>());
        assert_eq!(format!("{a:?}"), "Randomness(seeded)");
    }
}

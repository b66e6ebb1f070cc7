//! Deserialisation of sequences without trusting their claimed length.
//!
//! serde pre-allocates up to 1 MiB for a sequence whatever its claimed
//! length, independent of the frame limit. Sequence fields in wire types use
//! [`vec`] instead, which reserves at most a few elements up front and grows
//! as elements actually decode, so memory follows the bytes received.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, SeqAccess, Visitor};

/// Elements reserved before any has decoded.
const INITIAL: usize = 16;

/// `#[serde(deserialize_with = "bounded::vec")]` for `Vec<T>` fields.
pub fn vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(INITIAL));
            while let Some(x) = seq.next_element()? {
                out.push(x);
            }
            Ok(out)
        }
    }
    d.deserialize_seq(V(PhantomData))
}

//! The file that is sent: pseudo-random bytes (incompressible, not secret)
//! written once per run, and SHA-256 checks of what the receivers saved.

use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};

/// SplitMix64: a tiny, fast generator for filler bytes (never for keys).
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator starting at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Fills `buf` with the next bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// The file every try sends.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: [u8; 32],
}

/// Writes `size` pseudo-random bytes to `dir/name` and hashes them.
pub fn write(dir: &Path, name: &str, size: u64, seed: u64) -> Result<Source> {
    let path = dir.join(name);
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut rng = SplitMix64::new(seed);
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        let part = &mut buf[..n];
        rng.fill(part);
        hash.update(&*part);
        out.write_all(part)
            .with_context(|| format!("writing {}", path.display()))?;
        left -= n as u64;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(Source {
        path,
        size,
        sha256: hash.finalize().into(),
    })
}

/// An existing file (e.g. the one a peer benchmark sends too), hashed.
pub fn open(path: &Path) -> Result<Source> {
    let (size, sha256) = hash_file(path, u64::MAX)?;
    Ok(Source {
        path: path.to_path_buf(),
        size,
        sha256,
    })
}

/// The size and SHA-256 of the file at `path`; an error once it passes
/// `most` bytes.
fn hash_file(path: &Path, most: u64) -> Result<(u64, [u8; 32])> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        size += n as u64;
        if size > most {
            bail!("{} is longer than the file sent", path.display());
        }
        hash.update(&buf[..n]);
    }
    Ok((size, hash.finalize().into()))
}

/// Checks that `saved` holds exactly the source's bytes (size and SHA-256).
pub fn verify(saved: &Path, source: &Source) -> Result<()> {
    let (total, got) = hash_file(saved, source.size)?;
    if total != source.size {
        bail!(
            "{} has {total} bytes, the file sent {}",
            saved.display(),
            source.size
        );
    }
    if got != source.sha256 {
        bail!("{}: SHA-256 differs from the file sent", saved.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_file_verifies_and_a_changed_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let src = write(dir.path(), "a.bin", 3 * 1024 * 1024 + 5, 7).unwrap();
        assert_eq!(std::fs::metadata(&src.path).unwrap().len(), src.size);
        verify(&src.path, &src).unwrap();

        let copy = dir.path().join("b.bin");
        let mut bytes = std::fs::read(&src.path).unwrap();
        bytes[12345] ^= 1;
        std::fs::write(&copy, &bytes).unwrap();
        assert!(verify(&copy, &src)
            .unwrap_err()
            .to_string()
            .contains("SHA-256"));
        bytes.pop();
        std::fs::write(&copy, &bytes).unwrap();
        assert!(verify(&copy, &src)
            .unwrap_err()
            .to_string()
            .contains("bytes"));
    }

    #[test]
    fn the_filler_is_not_constant() {
        let mut r = SplitMix64::new(1);
        let mut b = [0u8; 13];
        r.fill(&mut b);
        assert!(b.iter().any(|&x| x != b[0]));
    }
}

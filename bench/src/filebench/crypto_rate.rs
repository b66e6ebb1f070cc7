//! Seal/open rates of 64 KiB file chunks, measured in the same run as the
//! transfers: seal alone and open alone (one thread each), and the shape of
//! a room transfer — one thread seals every chunk while N threads each open
//! every chunk, concurrently — as the stream rate one receiver sees.
//!
//! Every loop is bounded by a chunk count and by a deadline.

use std::sync::mpsc::sync_channel;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Result};
use common::crypto::seal::{open, seal, SealKeys, SessionKey};
use common::crypto::OsRng;
use common::engine::files::CHUNK_SIZE;
use serde::Serialize;

/// Authenticated header bytes per chunk (a chunk header is of this order).
const AAD: [u8; 64] = [0x5a; 64];
/// Sealed chunks queued for each opener thread (a bounded queue, like the
/// relay's per-connection queue).
const QUEUE: usize = 32;

/// The seal/open figures of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Rates {
    /// Always `"filebench-crypto"`.
    pub bench: &'static str,
    /// Plaintext bytes per chunk.
    pub chunk_bytes: usize,
    /// Seal alone, one thread, 10^6 bytes of plaintext per second.
    pub seal_mbps: f64,
    /// Open alone, one thread, 10^6 bytes/s.
    pub open_mbps: f64,
    /// SHA-256 alone (a file's hash, computed by its sender and by every
    /// receiver), one thread, 10^6 bytes/s.
    pub sha256_mbps: f64,
    /// One sealer and N openers at once.
    pub fanout: Vec<Fanout>,
}

/// One sealer thread, `openers` opener threads that each open every chunk.
#[derive(Debug, Clone, Serialize)]
pub struct Fanout {
    /// Opener threads (receivers).
    pub openers: usize,
    /// Chunks every opener opened.
    pub chunks: u64,
    /// Stream rate one receiver sees, 10^6 bytes/s.
    pub stream_mbps: f64,
}

impl Rates {
    /// Human-readable lines.
    pub fn human(&self) -> String {
        let mut s = format!(
            "seal/open of {} KiB chunks: seal {:.0} MB/s, open {:.0} MB/s, SHA-256 {:.0} MB/s (1 thread each)",
            self.chunk_bytes / 1024,
            self.seal_mbps,
            self.open_mbps,
            self.sha256_mbps
        );
        for f in &self.fanout {
            s += &format!(
                "\n  1 sealer + {} opener{}: {:.0} MB/s per receiver stream ({} chunks)",
                f.openers,
                if f.openers == 1 { "" } else { "s" },
                f.stream_mbps,
                f.chunks
            );
        }
        s
    }
}

/// Measures seal and open alone over `chunks` chunks each, then the
/// fan-out for every count in `openers`; each figure is the median of
/// `repeats` runs (other work on the machine shows as an outlier, not as
/// the figure). Stops early at `deadline`.
pub fn measure(chunks: u64, repeats: usize, openers: &[usize], deadline: Instant) -> Result<Rates> {
    let chunks = chunks.max(1);
    let repeats = repeats.clamp(1, 15);
    let keys = SessionKey::generate(&mut OsRng).epoch_keys(&common::crypto::random_room_id(), 1);
    let plain = pseudo_random_chunk();
    let seal_mbps = median((0..repeats).map(|_| Ok(seal_alone(&keys, &plain, chunks, deadline))))?;
    let open_mbps = median((0..repeats).map(|_| open_alone(&keys, &plain, chunks, deadline)))?;
    let sha256_mbps = median((0..repeats).map(|_| Ok(sha256_alone(&plain, chunks, deadline))))?;
    let mut fanout = Vec::with_capacity(openers.len());
    for &n in openers {
        let n = n.clamp(1, 64);
        let runs = (0..repeats)
            .map(|_| fan_out(&keys, &plain, n, chunks, deadline))
            .collect::<Result<Vec<_>>>()?;
        fanout.push(Fanout {
            openers: n,
            chunks: runs.iter().map(|r| r.chunks).min().unwrap_or(0),
            stream_mbps: median(runs.iter().map(|r| Ok(r.stream_mbps)))?,
        });
    }
    Ok(Rates {
        bench: "filebench-crypto",
        chunk_bytes: plain.len(),
        seal_mbps,
        open_mbps,
        sha256_mbps,
        fanout,
    })
}

/// The median of some rates (the upper one of the middle two).
fn median(rates: impl Iterator<Item = Result<f64>>) -> Result<f64> {
    let mut v = rates.collect::<Result<Vec<f64>>>()?;
    v.sort_by(f64::total_cmp);
    Ok(v.get(v.len() / 2).copied().unwrap_or(0.0))
}

fn pseudo_random_chunk() -> Vec<u8> {
    let mut rng = crate::source::SplitMix64::new(0x5eed);
    let mut v = vec![0u8; CHUNK_SIZE as usize];
    rng.fill(&mut v);
    v
}

fn mbps(bytes: u64, since: Instant) -> f64 {
    let secs = since.elapsed().as_secs_f64();
    if secs > 0.0 {
        bytes as f64 / secs / 1e6
    } else {
        0.0
    }
}

fn seal_alone(keys: &SealKeys, plain: &[u8], chunks: u64, deadline: Instant) -> f64 {
    let start = Instant::now();
    let mut done = 0u64;
    while done < chunks && Instant::now() < deadline {
        std::hint::black_box(seal(&mut OsRng, keys, &AAD, std::hint::black_box(plain)));
        done += 1;
    }
    mbps(done * plain.len() as u64, start)
}

fn sha256_alone(plain: &[u8], chunks: u64, deadline: Instant) -> f64 {
    use sha2::{Digest, Sha256};
    let start = Instant::now();
    let mut hash = Sha256::new();
    let mut done = 0u64;
    while done < chunks && Instant::now() < deadline {
        hash.update(std::hint::black_box(plain));
        done += 1;
    }
    std::hint::black_box(hash.finalize());
    mbps(done * plain.len() as u64, start)
}

fn open_alone(keys: &SealKeys, plain: &[u8], chunks: u64, deadline: Instant) -> Result<f64> {
    let sealed = seal(&mut OsRng, keys, &AAD, plain);
    let start = Instant::now();
    let mut done = 0u64;
    while done < chunks && Instant::now() < deadline {
        let p = open(keys, &AAD, std::hint::black_box(&sealed))
            .map_err(|_| anyhow!("a chunk sealed a moment ago did not open"))?;
        std::hint::black_box(&p);
        done += 1;
    }
    Ok(mbps(done * plain.len() as u64, start))
}

/// One thread seals, `openers` threads each open every sealed chunk; the
/// rate is what every opener got through, over the time until the last
/// one finished.
fn fan_out(
    keys: &SealKeys,
    plain: &[u8],
    openers: usize,
    chunks: u64,
    deadline: Instant,
) -> Result<Fanout> {
    let start = Instant::now();
    let opened = std::thread::scope(|s| -> Result<u64> {
        let mut queues = Vec::with_capacity(openers);
        let mut threads = Vec::with_capacity(openers);
        for _ in 0..openers {
            let (tx, rx) = sync_channel::<Arc<common::wire::Sealed>>(QUEUE);
            queues.push(tx);
            threads.push(s.spawn(move || -> Result<u64> {
                let mut n = 0u64;
                for sealed in rx {
                    let p = open(keys, &AAD, &sealed)
                        .map_err(|_| anyhow!("a sealed chunk did not open"))?;
                    std::hint::black_box(&p);
                    n += 1;
                }
                Ok(n)
            }));
        }
        let mut sent = 0u64;
        'sealing: while sent < chunks && Instant::now() < deadline {
            let sealed = Arc::new(seal(&mut OsRng, keys, &AAD, plain));
            for q in &queues {
                if q.send(Arc::clone(&sealed)).is_err() {
                    break 'sealing;
                }
            }
            sent += 1;
        }
        drop(queues);
        let mut least = sent;
        for t in threads {
            let n = t
                .join()
                .map_err(|_| anyhow!("an opener thread panicked"))??;
            least = least.min(n);
        }
        Ok(least)
    })?;
    Ok(Fanout {
        openers,
        chunks: opened,
        stream_mbps: mbps(opened * plain.len() as u64, start),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_short_measurement_reports_every_fan_out_asked_for() {
        let r = measure(8, 3, &[1, 3], Instant::now() + Duration::from_secs(30)).unwrap();
        assert_eq!(r.chunk_bytes, 64 * 1024);
        assert!(r.seal_mbps > 0.0 && r.open_mbps > 0.0);
        assert_eq!(r.fanout.len(), 2);
        assert_eq!(r.fanout[1].openers, 3);
        assert_eq!(r.fanout[1].chunks, 8);
        let measured = |n| r.fanout.iter().any(|f| f.openers == n);
        assert!(measured(3) && !measured(2));
    }

    #[test]
    fn the_median_ignores_one_outlier() {
        let m = median([Ok(100.0), Ok(3.0), Ok(110.0)].into_iter()).unwrap();
        assert_eq!(m, 100.0);
        assert_eq!(median(std::iter::empty()).unwrap(), 0.0);
    }

    #[test]
    fn a_past_deadline_measures_nothing_and_does_not_hang() {
        let r = measure(1_000_000, 3, &[4], Instant::now()).unwrap();
        assert_eq!(r.fanout[0].chunks, 0);
    }
}

//! Files on disk for the driver: where incoming files go, the names they
//! get, and the temporary files they are written to until their SHA-256
//! has matched.
//!
//! An incoming file is written to a hidden temporary file in the download
//! folder (`.teamchat-XXXXXX.part`, removed when dropped) and renamed to its
//! final name only when the engine reports the whole content verified, so
//! nothing partial is ever presented as the file. The final name is the
//! offered name made safe ([`safe_file_name`]) and never overwrites: `name
//! (1).ext`, `name (2).ext`, …

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use common::engine::files::DEFAULT_MAX_FILE;

/// Files up to this size are saved without asking (8 MiB).
pub const DEFAULT_AUTO_ACCEPT: u64 = 8 * 1024 * 1024;
/// Slowest pace that may be set: eight files sharing it still send each
/// one a chunk well within a receiver's stall timeout (60 s).
pub const MIN_FILE_RATE: u64 = 32 * 1024;
/// Longest saved name, in bytes.
pub(crate) const MAX_SAVED_NAME: usize = 200;
/// Longest extension kept when a name is shortened.
const MAX_EXTENSION: usize = 16;

/// The driver's file settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOptions {
    /// Where incoming files are saved.
    pub download_dir: PathBuf,
    /// Largest file sent or accepted.
    pub max_size: u64,
    /// Incoming files up to this size are saved at once; larger ones wait
    /// for [`crate::driver::Request::AcceptFile`].
    pub auto_accept: u64,
    /// Most bytes per second a file is sent at (at least
    /// [`MIN_FILE_RATE`]); `None` (the default): as fast as the relay takes
    /// the chunks (its flow control slows us to what the room can take).
    pub rate: Option<u64>,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            download_dir: default_download_dir(),
            max_size: DEFAULT_MAX_FILE,
            auto_accept: DEFAULT_AUTO_ACCEPT,
            rate: None,
        }
    }
}

/// The file flags both apps take.
#[derive(Debug, Clone, clap::Args)]
pub struct FileArgs {
    /// Where received files are saved [default: your Downloads folder].
    #[arg(long, value_name = "DIR", env = "TEAMCHAT_DOWNLOADS")]
    pub download_dir: Option<PathBuf>,
    /// Largest file sent or received, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_MAX_FILE / (1024 * 1024))]
    pub max_file_mib: u64,
    /// Received files up to this many MiB are saved without asking; larger
    /// ones wait for Accept (`/accept ID`).
    #[arg(long, value_name = "MIB", default_value_t = DEFAULT_AUTO_ACCEPT / (1024 * 1024))]
    pub auto_accept_mib: u64,
    /// Most KiB per second outgoing files are sent at, at least 32
    /// [default: as fast as the relay takes them; its flow control slows a
    /// file to what the room can take, and chat overtakes it].
    #[arg(long, value_name = "KIB_PER_S")]
    pub file_rate_kib: Option<u64>,
}

impl FileArgs {
    /// The options these flags describe.
    pub fn options(&self) -> FileOptions {
        FileOptions {
            download_dir: self
                .download_dir
                .clone()
                .unwrap_or_else(default_download_dir),
            max_size: self.max_file_mib.saturating_mul(1024 * 1024),
            auto_accept: self.auto_accept_mib.saturating_mul(1024 * 1024),
            rate: self
                .file_rate_kib
                .map(|k| k.saturating_mul(1024).max(MIN_FILE_RATE)),
        }
    }
}

/// The user's download folder, or `teamchat-downloads` in the data folder.
pub fn default_download_dir() -> PathBuf {
    if let Some(d) =
        directories::UserDirs::new().and_then(|u| u.download_dir().map(Path::to_path_buf))
    {
        return d;
    }
    match directories::ProjectDirs::from("org", "TeamChat", "teamchat") {
        Some(p) => p.data_dir().join("downloads"),
        None => PathBuf::from("teamchat-downloads"),
    }
}

/// Windows device names: never a file name, with any extension.
fn reserved(stem: &str) -> bool {
    let s = stem.to_ascii_uppercase();
    matches!(
        s.as_str(),
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$"
    ) || s
        .strip_prefix("COM")
        .or_else(|| s.strip_prefix("LPT"))
        .is_some_and(|n| {
            // Windows also reserves the superscript digits one to three.
            let mut c = n.chars();
            matches!(
                (c.next(), c.next()),
                (Some('0'..='9' | '¹' | '²' | '³'), None)
            )
        })
}

/// Windows reads `CON.tar.gz` as the device too: the part before the first
/// dot decides.
pub(crate) fn is_device_name(name: &str) -> bool {
    reserved(name.split('.').next().unwrap_or("").trim_end())
}

/// Files a file manager acts on when it merely shows the folder (shell
/// links, folder settings): never saved under a name that works.
pub(crate) fn acts_when_listed(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ACTIVE_EXTENSIONS.iter().any(|a| lower.ends_with(a))
        || lower == "desktop.ini"
        || lower == "autorun.inf"
}

/// Extensions a file manager acts on when it merely lists the folder.
const ACTIVE_EXTENSIONS: [&str; 8] = [
    ".lnk",
    ".url",
    ".scf",
    ".library-ms",
    ".searchconnector-ms",
    ".desktop",
    ".website",
    ".settingcontent-ms",
];

/// Cuts `stem` (at a character boundary, then trailing dots and spaces) so
/// that `stem` and `ext` together take at most [`MAX_SAVED_NAME`] bytes.
fn fit(stem: &mut String, ext: &str) {
    if stem.len() + ext.len() <= MAX_SAVED_NAME {
        return;
    }
    let mut end = MAX_SAVED_NAME.saturating_sub(ext.len());
    while !stem.is_char_boundary(end) {
        end -= 1;
    }
    stem.truncate(end);
    let kept = stem.trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    *stem = if kept.is_empty() {
        "file".into()
    } else {
        kept.to_string()
    };
}

/// A name from another person made safe to create in the download folder:
/// only its last path component; no control, bidirectional-override or
/// other invisible characters; none of `<>:"/\|?*`; no leading or trailing
/// dots and spaces; not a Windows device name; at most 200 bytes (the
/// extension kept). Never empty, `.` or `..`.
pub fn safe_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .filter(|c| {
            !c.is_control()
                && !common::engine::is_format_char(*c)
                && !matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*' | '/' | '\\')
        })
        .collect();
    let mut out = cleaned
        .trim_matches(|c: char| c == '.' || c.is_whitespace())
        .to_string();
    if out.is_empty() {
        out = "file".into();
    }
    let (mut stem, mut ext) = match out.rfind('.') {
        Some(i) if i > 0 && out.len() - i <= MAX_EXTENSION + 1 => {
            (out[..i].to_string(), out[i..].to_string())
        }
        _ => (out, String::new()),
    };
    // The checks below run on the name as it will be saved, after any cut
    // to length: a long name cut short can end in an extension a file
    // manager acts on, or become a device name (both found by fuzzing).
    // Each fix is made at most once (a leading '_' is never a device, a
    // name ending in ".txt" never acts), so three rounds always settle.
    for _ in 0..3 {
        fit(&mut stem, &ext);
        let name = format!("{stem}{ext}");
        if is_device_name(&name) {
            stem.insert(0, '_');
            continue;
        }
        if acts_when_listed(&name) {
            ext.push_str(".txt");
            continue;
        }
        break;
    }
    format!("{stem}{ext}")
}

/// A file being received: a temporary file in the download folder, deleted
/// when dropped unless saved. Its handle is open while bytes arrive and
/// closed once the file is complete, so files waiting for Accept hold no
/// file descriptor.
#[derive(Debug)]
pub struct Partial {
    file: Option<std::fs::File>,
    path: tempfile::TempPath,
    written: u64,
}

/// Partial files older than this are left over from a run that ended
/// without cleaning up (a crash, a power cut): longer than any transfer
/// stalls or waits for Accept.
pub const STALE_PARTIAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Deletes this app's temporary files in `dir` untouched for `older_than`
/// (left by a run that crashed); returns how many. Another app running
/// with the same folder keeps its files, which it writes to or which wait
/// at most 10 minutes for Accept. Only names of the form
/// `.teamchat-*.part` that are regular files are touched.
pub fn sweep_partials(dir: &Path, older_than: std::time::Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let now = std::time::SystemTime::now();
    let mut removed = 0;
    for e in entries.flatten().take(100_000) {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if !(name.starts_with(".teamchat-") && name.ends_with(".part")) {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| now.duration_since(m).ok())
            .is_some_and(|age| age >= older_than);
        if meta.is_file() && old && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

impl Partial {
    /// A new temporary file in `dir` (created if missing).
    pub fn create(dir: &Path) -> std::io::Result<Partial> {
        std::fs::create_dir_all(dir)?;
        let (file, path) = tempfile::Builder::new()
            .prefix(".teamchat-")
            .suffix(".part")
            .tempfile_in(dir)?
            .into_parts();
        Ok(Partial {
            file: Some(file),
            path,
            written: 0,
        })
    }

    /// Appends bytes.
    pub fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        let Some(f) = self.file.as_mut() else {
            return Err(std::io::Error::other("the file is already complete"));
        };
        f.write_all(data)?;
        self.written += data.len() as u64;
        Ok(())
    }

    /// Closes the handle of a complete file (no flush to disk: that is
    /// [`Partial::save`]'s, off the caller's loop).
    pub fn close(&mut self) {
        self.file = None;
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Moves the complete file to `dir` under the safe form of `name`,
    /// never over an existing file. Returns the path it got.
    pub fn save(self, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
        match &self.file {
            Some(f) => f.sync_all()?,
            // Closed when complete: reopened to flush it to disk.
            None => std::fs::OpenOptions::new()
                .write(true)
                .open(&self.path)?
                .sync_all()?,
        }
        let mut tmp = self.path;
        let name = safe_file_name(name);
        let (stem, ext) = match name.rfind('.') {
            Some(i) if i > 0 => (&name[..i], &name[i..]),
            _ => (name.as_str(), ""),
        };
        for n in 0..1000u32 {
            let candidate = if n == 0 {
                dir.join(&name)
            } else {
                // Still at most MAX_SAVED_NAME bytes with the number added.
                let suffix = format!(" ({n}){ext}");
                let mut stem = stem.to_string();
                fit(&mut stem, &suffix);
                dir.join(format!("{stem}{suffix}"))
            };
            match tmp.persist_noclobber(&candidate) {
                Ok(()) => {
                    mark_downloaded(&candidate);
                    return Ok(candidate);
                }
                Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => tmp = e.path,
                Err(e) => return Err(e.error),
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("1,000 files named like {name} already exist"),
        ))
    }
}

/// Marks a saved file as downloaded from the internet where the system
/// has such a mark (Windows: the `Zone.Identifier` stream, so SmartScreen
/// and Office treat it as untrusted). Best effort: a file system without
/// streams just does not get it.
fn mark_downloaded(path: &Path) {
    #[cfg(windows)]
    {
        let mut stream = path.as_os_str().to_owned();
        stream.push(":Zone.Identifier");
        let _ = std::fs::write(stream, b"[ZoneTransfer]\r\nZoneId=3\r\n");
    }
    #[cfg(not(windows))]
    let _ = path;
}

/// A file about to be offered: what the driver learned reading it once, and
/// the same open file, back at its start, to read the chunks from.
#[derive(Debug)]
pub struct Described {
    /// Its name, without directories.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Media type guessed from the name.
    pub media_type: String,
    /// SHA-256 of the content.
    pub sha256: [u8; 32],
    /// The file, opened once (what was hashed is what is sent, unless it
    /// changes meanwhile, which the receivers' hash check catches).
    pub file: std::fs::File,
}

/// Opens and reads a file once before offering it: its name, size, media
/// type and SHA-256, and the open file. Blocking: the driver runs it off
/// its loop.
pub fn describe(path: &Path, max_size: u64) -> Result<Described, String> {
    use std::io::Seek;
    let shown = path.display();
    let mut open = std::fs::OpenOptions::new();
    open.read(true);
    // A FIFO or device opened for reading could block the open itself;
    // non-blocking, it opens at once and is refused below (regular files
    // ignore the flag).
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut open, libc::O_NONBLOCK);
    let mut f = open
        .open(path)
        .map_err(|e| format!("cannot send {shown}: {e}"))?;
    // Checked on the open file, so the path cannot be swapped in between.
    let meta = f
        .metadata()
        .map_err(|e| format!("cannot send {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("cannot send {shown}: not a regular file"));
    }
    if meta.len() > max_size {
        return Err(format!(
            "cannot send {shown}: {} bytes, over the limit of {max_size} bytes",
            meta.len()
        ));
    }
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = std::io::Read::read(&mut f, &mut buf)
            .map_err(|e| format!("cannot read {shown}: {e}"))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > max_size {
            return Err(format!(
                "cannot send {shown}: it grew over the limit while being read"
            ));
        }
        hash.update(&buf[..n]);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    f.rewind()
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    Ok(Described {
        media_type: media_type(&name).into(),
        name,
        size: total,
        sha256: hash.finalize().into(),
        file: f,
    })
}

/// A media type from a file name's extension (what the receiver is told;
/// it never decides anything).
pub fn media_type(name: &str) -> &'static str {
    let ext = name.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
    match ext.as_str() {
        "txt" | "log" | "md" => "text/plain",
        "pdf" => "application/pdf",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "json" => "application/json",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        _ => "application/octet-stream",
    }
}

/// Bytes for people: `512 B`, `1.5 KiB`, `20.0 MiB`.
pub fn human_size(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (`fuzz/corpus/file_name/crash-d3530443…`): "PRN"
    /// and two hundred spaces before more text was cut to "PRN", the
    /// printer on Windows, after the device-name check had passed.
    #[test]
    fn a_name_cut_short_never_becomes_a_device_name() {
        for device in ["PRN", "con", "COM1", "lpt²", "NUL"] {
            let name = format!("{device}{}x", " ".repeat(250));
            let safe = safe_file_name(&name);
            assert_eq!(safe, format!("_{device}"));
            assert_eq!(safe_file_name(&safe), safe, "a safe name changed");
        }
    }

    /// Found by fuzzing (`fuzz/corpus/file_name/crash-92ad78cb…`): a long
    /// name without a short extension was cut to 200 bytes after the check
    /// for extensions a file manager acts on, so the cut could end the saved
    /// name in ".lnk" or ".desktop".
    #[test]
    fn a_name_cut_short_never_ends_in_an_active_extension() {
        for active in [".lnk", ".desktop", ".url", ".settingcontent-ms"] {
            let name = format!(
                "{}{active}{}",
                "a".repeat(200 - active.len()),
                "b".repeat(100)
            );
            let safe = safe_file_name(&name);
            assert!(safe.len() <= MAX_SAVED_NAME, "{} bytes", safe.len());
            assert!(!safe.to_ascii_lowercase().ends_with(active), "{safe}");
            assert!(safe.ends_with(".txt"), "{safe}");
            assert_eq!(safe_file_name(&safe), safe, "a safe name changed");
        }
    }

    #[test]
    fn hostile_names_become_safe_names() {
        assert_eq!(safe_file_name("../../etc/passwd"), "passwd");
        assert_eq!(safe_file_name("/abs/path"), "path");
        assert_eq!(safe_file_name("C:\\Windows\\system.ini"), "system.ini");
        assert_eq!(safe_file_name("a\u{202e}txt.exe"), "atxt.exe");
        assert_eq!(safe_file_name("CON"), "_CON");
        assert_eq!(safe_file_name("con.txt"), "_con.txt");
        assert_eq!(safe_file_name("LPT1.tar.gz"), "_LPT1.tar.gz");
        assert_eq!(safe_file_name("COM10.txt"), "COM10.txt");
        assert_eq!(safe_file_name("COM\u{b9}.txt"), "_COM\u{b9}.txt");
        assert_eq!(safe_file_name("lpt\u{b3}"), "_lpt\u{b3}");
        assert_eq!(safe_file_name("LPT\u{b2}.log"), "_LPT\u{b2}.log");
        assert_eq!(safe_file_name("COM\u{b9}0"), "COM\u{b9}0");
        assert_eq!(safe_file_name("lpt1.gz"), "_lpt1.gz");
        assert_eq!(safe_file_name(".."), "file");
        assert_eq!(safe_file_name("."), "file");
        assert_eq!(safe_file_name(""), "file");
        assert_eq!(safe_file_name(".bashrc"), "bashrc");
        assert_eq!(safe_file_name("report. "), "report");
        assert_eq!(safe_file_name("what?<>|*\".txt"), "what.txt");
        assert_eq!(safe_file_name("line\nbreak\u{0}.txt"), "linebreak.txt");
        assert_eq!(safe_file_name("desktop.ini"), "desktop.ini.txt");
        assert_eq!(safe_file_name("Invoice.LNK"), "Invoice.LNK.txt");
        assert_eq!(safe_file_name("share.url"), "share.url.txt");
        let long = format!("{}.pdf", "é".repeat(150));
        let s = safe_file_name(&long);
        assert!(s.len() <= 200 && s.ends_with(".pdf"), "{s}");
        let s = safe_file_name(&"x".repeat(300));
        assert_eq!(s.len(), 200);
    }

    #[test]
    fn saving_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.txt"), b"mine").unwrap();
        let mut paths = Vec::new();
        for body in [b"one".as_slice(), b"two"] {
            let mut p = Partial::create(dir.path()).unwrap();
            p.write(body).unwrap();
            paths.push(p.save(dir.path(), "a.txt").unwrap());
        }
        assert_eq!(paths[0], dir.path().join("a (1).txt"));
        assert_eq!(paths[1], dir.path().join("a (2).txt"));
        assert_eq!(std::fs::read(dir.path().join("a.txt")).unwrap(), b"mine");
        assert_eq!(std::fs::read(&paths[1]).unwrap(), b"two");
    }

    #[test]
    fn a_dropped_partial_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = Partial::create(dir.path()).unwrap();
        p.write(&[1; 1000]).unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        drop(p);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn only_stale_partial_files_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let live = Partial::create(dir.path()).unwrap();
        std::fs::write(dir.path().join(".teamchat-old.part"), b"x").unwrap();
        std::fs::write(dir.path().join("report.part"), b"mine").unwrap();
        std::fs::write(dir.path().join(".teamchat-notes.txt"), b"mine").unwrap();
        std::fs::create_dir(dir.path().join(".teamchat-dir.part")).unwrap();
        // Nothing is an hour old yet.
        assert_eq!(sweep_partials(dir.path(), STALE_PARTIAL), 0);
        // Everything is at least 0 s old: only our temporary files go, the
        // live one included (its handle still works; it is a test of age).
        assert_eq!(sweep_partials(dir.path(), std::time::Duration::ZERO), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [".teamchat-dir.part", ".teamchat-notes.txt", "report.part"]
        );
        assert_eq!(
            sweep_partials(&dir.path().join("missing"), STALE_PARTIAL),
            0
        );
        drop(live);
    }

    #[test]
    fn describe_hashes_and_refuses_what_it_must() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("notes.txt");
        std::fs::write(&f, b"abc").unwrap();
        let mut d = describe(&f, 100).unwrap();
        assert_eq!(
            (d.name.as_str(), d.size, d.media_type.as_str()),
            ("notes.txt", 3, "text/plain")
        );
        let mut again = Vec::new();
        std::io::Read::read_to_end(&mut d.file, &mut again).unwrap();
        assert_eq!(again, b"abc", "the open file is back at its start");
        assert_eq!(
            hex::encode(d.sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(describe(&f, 2).unwrap_err().contains("over the limit"));
        #[cfg(unix)]
        {
            let fifo = dir.path().join("fifo");
            let ok = std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                // Opened for reading without a writer would block: a FIFO
                // is refused before it is read (opened non-blocking).
                assert!(describe(&fifo, 100)
                    .unwrap_err()
                    .contains("not a regular file"));
            }
        }
        assert!(describe(dir.path(), 100)
            .unwrap_err()
            .contains("not a regular file"));
        assert!(describe(&dir.path().join("missing"), 100).is_err());
    }
}

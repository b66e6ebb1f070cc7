//! What the kernel says about a process: CPU time and resident memory of the
//! relay, the open-file limit of this process. Linux `/proc` only; parsing is
//! separate from reading so it is unit-tested.

use std::process::Command;

use anyhow::{anyhow, Context, Result};

/// CPU time (user + system, all threads) of `pid`, in clock ticks.
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat_ticks(&text).with_context(|| format!("parsing {path}"))
}

/// CPU time of this process, in clock ticks.
pub fn self_cpu_ticks() -> Result<u64> {
    let text = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    parse_stat_ticks(&text).context("parsing /proc/self/stat")
}

/// `utime + stime` from the text of `/proc/PID/stat`. The command name in
/// parentheses may hold spaces or parentheses, so fields are counted from
/// the last `)`.
pub fn parse_stat_ticks(text: &str) -> Result<u64> {
    let close = text
        .rfind(')')
        .ok_or_else(|| anyhow!("no ')' after the command name"))?;
    // After ')': field 3 (state) is index 0, so utime (14) is 11, stime (15) 12.
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let get = |i: usize, name: &str| -> Result<u64> {
        fields
            .get(i)
            .ok_or_else(|| anyhow!("missing {name}"))?
            .parse::<u64>()
            .with_context(|| format!("bad {name}"))
    };
    Ok(get(11, "utime")? + get(12, "stime")?)
}

/// Resident set size of `pid` in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status_rss(&text).with_context(|| format!("parsing {path}"))
}

/// Fails with advice if this process may not open `conns` more sockets
/// and keep `spare` descriptors besides.
pub fn check_fd_limit(conns: usize, spare: u64) -> Result<()> {
    let need = conns as u64 + spare;
    match open_files_limit()? {
        Some(limit) if limit < need => Err(anyhow!(
            "the open-file limit is {limit}, {need} are needed for {conns} connections: \
             raise it in the shell first (`ulimit -n {}`)",
            need.next_power_of_two().max(4096)
        )),
        _ => Ok(()),
    }
}

/// Peak resident set size of `pid` over its life in KiB (`VmHWM`).
pub fn peak_rss_kib(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_status_kib(&text, "VmHWM:").with_context(|| format!("parsing {path}"))
}

/// `VmRSS` in KiB from the text of `/proc/PID/status`.
pub fn parse_status_rss(text: &str) -> Result<u64> {
    parse_status_kib(text, "VmRSS:")
}

/// A `KEY: N kB` line of `/proc/PID/status`, in KiB.
fn parse_status_kib(text: &str, key: &str) -> Result<u64> {
    let line = text
        .lines()
        .find(|l| l.starts_with(key))
        .ok_or_else(|| anyhow!("no {key} line (is it a kernel thread, or a zombie?)"))?;
    let mut parts = line[key.len()..].split_whitespace();
    let value = parts.next().ok_or_else(|| anyhow!("empty {key} line"))?;
    let unit = parts.next().unwrap_or("kB");
    if unit != "kB" {
        return Err(anyhow!("unexpected {key} unit {unit:?}"));
    }
    value
        .parse::<u64>()
        .with_context(|| format!("bad {key} value"))
}

/// This process's soft limit on open files (`None` = unlimited).
pub fn open_files_limit() -> Result<Option<u64>> {
    let text = std::fs::read_to_string("/proc/self/limits").context("reading /proc/self/limits")?;
    parse_limits_nofile(&text).context("parsing /proc/self/limits")
}

/// The soft "Max open files" limit from the text of `/proc/PID/limits`.
pub fn parse_limits_nofile(text: &str) -> Result<Option<u64>> {
    let line = text
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .ok_or_else(|| anyhow!("no 'Max open files' line"))?;
    let soft = line["Max open files".len()..]
        .split_whitespace()
        .next()
        .ok_or_else(|| anyhow!("empty 'Max open files' line"))?;
    if soft == "unlimited" {
        return Ok(None);
    }
    soft.parse::<u64>()
        .map(Some)
        .context("bad 'Max open files' value")
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that cannot be run).
pub fn clk_tck() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// Fails with advice if `pid` is not a process we can read.
pub fn check_pid(pid: u32) -> Result<()> {
    cpu_ticks(pid)
        .map(|_| ())
        .with_context(|| format!("--relay-pid {pid}: no such process, or not readable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_awkward_command_name() {
        let text = "1234 (teamchat) (x y)) S 1 1234 1234 0 -1 4194560 100 0 0 0 \
                    250 75 0 0 20 0 3 0 555 1000 200 18446744073709551615";
        assert_eq!(parse_stat_ticks(text).unwrap(), 325);
    }

    #[test]
    fn own_stat_parses() {
        self_cpu_ticks().unwrap();
        cpu_ticks(std::process::id()).unwrap();
    }

    #[test]
    fn status_rss() {
        let text = "Name:\trelay\nVmPeak:\t  9000 kB\nVmRSS:\t    4321 kB\nThreads:\t3\n";
        assert_eq!(parse_status_rss(text).unwrap(), 4321);
        assert!(parse_status_rss("Name:\tx\n").is_err());
        assert_eq!(
            parse_status_kib("VmHWM:\t  9876 kB\nVmRSS:\t 4321 kB\n", "VmHWM:").unwrap(),
            9876
        );
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }

    #[test]
    fn limits_nofile() {
        let text = "Limit                     Soft Limit           Hard Limit           Units     \n\
                    Max processes             31000                31000                processes \n\
                    Max open files            1024                 524288               files     \n";
        assert_eq!(parse_limits_nofile(text).unwrap(), Some(1024));
        let unl = "Max open files            unlimited            unlimited            files\n";
        assert_eq!(parse_limits_nofile(unl).unwrap(), None);
        open_files_limit().unwrap();
    }

    #[test]
    fn ticks_per_second_is_positive() {
        assert!(clk_tck() > 0);
    }
}

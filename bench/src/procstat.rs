//! What /proc says of a process and of the machine: CPU seconds, RSS, UDP
//! receive-buffer drops. Read by the relay runner and the load generator.

/// CPU seconds (user + system) of a process, from /proc/PID/stat.
pub fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = s.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after the ')'.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds all processes of the machine spent busy (from /proc/stat).
pub fn machine_busy_secs() -> f64 {
    let s = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<f64> = s.lines().next().unwrap_or("").split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal
    [0usize, 1, 2, 5, 6, 7].iter().filter_map(|i| f.get(*i)).sum::<f64>() / 100.0
}

/// Datagrams the kernel dropped for a full receive buffer: (at the UDP
/// socket bound to `port`, machine-wide RcvbufErrors).
pub fn udp_drops(port: u16) -> (u64, u64) {
    let mut at_port = 0;
    for f in ["/proc/net/udp", "/proc/net/udp6"] {
        for line in std::fs::read_to_string(f).unwrap_or_default().lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let p = cols.get(1).and_then(|a| a.rsplit(':').next()).and_then(|h| u16::from_str_radix(h, 16).ok());
            if p == Some(port) {
                at_port += cols.last().and_then(|d| d.parse::<u64>().ok()).unwrap_or(0);
            }
        }
    }
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let udp: Vec<&str> = snmp.lines().filter(|l| l.starts_with("Udp:")).collect();
    let all = match udp.as_slice() {
        [names, values, ..] => names
            .split_whitespace()
            .zip(values.split_whitespace())
            .find(|(n, _)| *n == "RcvbufErrors")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0),
        _ => 0,
    };
    (at_port, all)
}

pub fn rss_bytes(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    s.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0) * 4096
}

//! Listening TCP sockets, read from the kernel's tables (`/proc/net/tcp{,6}`, through
//! `procfs`, which reads each address word in the host's byte order), and the processes
//! that own them. Where those tables do not exist (not Linux) or cannot be read, `None`:
//! the listen probe then falls back to connecting.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub addr: IpAddr,
    pub port: u16,
    pub inode: u64,
}

/// Why [`listeners`] gave `None`, for evidence.
pub const UNAVAILABLE: &str = if cfg!(target_os = "linux") {
    "the socket table cannot be read here"
} else {
    "the socket table is not read on this platform"
};

/// Every listening TCP socket on the host, or `None` when the tables cannot be read.
#[cfg(target_os = "linux")]
pub fn listeners() -> Option<Vec<Listener>> {
    let v4 = procfs::net::tcp().ok()?;
    let v6 = procfs::net::tcp6().unwrap_or_default();
    Some(listening(v4.into_iter().chain(v6)))
}

/// Not on this platform: no socket table to read.
#[cfg(not(target_os = "linux"))]
pub fn listeners() -> Option<Vec<Listener>> {
    None
}

#[cfg(target_os = "linux")]
fn listening(entries: impl IntoIterator<Item = procfs::net::TcpNetEntry>) -> Vec<Listener> {
    entries
        .into_iter()
        .filter(|e| e.state == procfs::net::TcpState::Listen)
        .map(|e| Listener {
            // A dual-stack socket bound to ::ffff:a.b.c.d is that IPv4 address.
            addr: e.local_address.ip().to_canonical(),
            port: e.local_address.port(),
            inode: e.inode,
        })
        .collect()
}

/// For each of these socket inodes, the PIDs of the processes holding it open: one walk
/// over every process's descriptors, however many ports are asked about.
#[cfg(target_os = "linux")]
pub fn inode_owners(inodes: &HashSet<u64>) -> HashMap<u64, Vec<u32>> {
    use procfs::process::FDTarget;
    let mut owners: HashMap<u64, Vec<u32>> = HashMap::new();
    let Ok(procs) = procfs::process::all_processes() else {
        return owners;
    };
    for process in procs.filter_map(Result::ok) {
        let Ok(pid) = u32::try_from(process.pid) else {
            continue;
        };
        let Ok(fds) = process.fd() else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            if let FDTarget::Socket(inode) = fd.target {
                if inodes.contains(&inode) {
                    let pids = owners.entry(inode).or_default();
                    if !pids.contains(&pid) {
                        pids.push(pid);
                    }
                }
            }
        }
    }
    owners
}

/// Not on this platform: nobody is known to own anything.
#[cfg(not(target_os = "linux"))]
pub fn inode_owners(_inodes: &HashSet<u64>) -> HashMap<u64, Vec<u32>> {
    HashMap::new()
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use procfs::net::TcpNetEntries;
    use procfs::{ExplicitSystemInfo, FromBufReadSI};

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 00000000:1F41 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F40 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 4244 1 0000000000000000 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:1F41 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5556 1 0000000000000000 100 0 0 10 0
   2: 0000000000000000FFFF00000100007F:1F42 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5557 1 0000000000000000 100 0 0 10 0
";
    /// The same sockets as a big-endian kernel prints them: each 32-bit word in its
    /// host order, so 127.0.0.1 is 7F000001 and ::1 ends in 00000001.
    const TCP_BE: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 7F000001:1F40 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
";
    const TCP6_BE: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000001:1F40 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 100 0 0 10 0
";

    fn parse(text: &str, little_endian: bool) -> Vec<Listener> {
        let host = ExplicitSystemInfo {
            boot_time_secs: 0,
            ticks_per_second: 100,
            page_size: 4096,
            is_little_endian: little_endian,
        };
        listening(
            TcpNetEntries::from_buf_read(text.as_bytes(), &host)
                .unwrap()
                .0,
        )
    }

    #[test]
    fn reads_listening_sockets_only() {
        let l = parse(TCP, true);
        assert_eq!(l.len(), 2);
        assert_eq!(
            l[0],
            Listener {
                addr: "127.0.0.1".parse().unwrap(),
                port: 8000,
                inode: 4242
            }
        );
        assert_eq!(l[1].addr, "0.0.0.0".parse::<IpAddr>().unwrap());
        assert_eq!(l[1].port, 8001);
    }

    #[test]
    fn reads_ipv6_words_in_host_order() {
        let l = parse(TCP6, true);
        assert_eq!(l[0].addr, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(l[1].addr, "::".parse::<IpAddr>().unwrap());
        assert_eq!(l[2].addr, "127.0.0.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_big_endian_host_reads_the_same_addresses() {
        assert_eq!(
            parse(TCP_BE, false)[0].addr,
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            parse(TCP6_BE, false)[0].addr,
            "::1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn this_hosts_tables_are_read() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let at = port.local_addr().unwrap().port();
        let mine = listeners().expect("a Linux host has /proc/net/tcp");
        let l = mine.iter().find(|l| l.port == at).expect("our listener");
        assert_eq!(l.addr, "127.0.0.1".parse::<IpAddr>().unwrap());
        let owners = inode_owners(&HashSet::from([l.inode]));
        assert_eq!(owners[&l.inode], vec![std::process::id()]);
    }
}

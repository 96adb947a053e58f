//! What the one exec is asked: the script's argument vector (every value one argument),
//! the per-client command lines of the fallback, and the messages a stdio server is sent.

use std::time::Duration;

use tokio::time::Instant;

/// The script. Fixed text: nothing is ever spliced into it.
pub const SCRIPT: &str = include_str!("inside.sh");
/// At most this many URLs (and stdio servers) are asked per exec.
pub const MAX_URLS: usize = 64;
/// Time the exec needs to bring the client's answer back after the client gives up.
pub const RETURN_MARGIN: Duration = Duration::from_millis(150);
/// The shortest time limit a client or the script is given.
pub const MIN_LIMIT: Duration = Duration::from_millis(100);
/// At most this many files are sized and digested per exec.
pub const MAX_FILES: usize = crate::dockerfile::MAX_FILES;

pub const PYTHON: &str = r#"import sys,socket,urllib.request,urllib.error
try:
    r=urllib.request.urlopen(sys.argv[1],timeout=float(sys.argv[2])); print("STATUS",r.status); print(r.read(300).decode("utf-8","replace"))
except urllib.error.HTTPError as e:
    print("STATUS",e.code); print(e.read(300).decode("utf-8","replace"))
except urllib.error.URLError as e:
    r=e.reason
    print("ERR dns" if isinstance(r,socket.gaierror) else "ERR refused" if isinstance(r,ConnectionRefusedError) else "ERR timeout" if isinstance(r,(socket.timeout,TimeoutError)) else "ERR other")
except (socket.timeout,TimeoutError):
    print("ERR timeout")
"#;

pub const NODE: &str = r#"const u=new URL(process.argv[1]);const t=1000*Number(process.argv[2]);
const q=require(u.protocol==='https:'?'https':'http').get(u,{timeout:t},r=>{let b='';r.on('data',d=>{if(b.length<300)b+=d});r.on('end',()=>{console.log('STATUS '+r.statusCode);console.log(b)})});
q.on('timeout',()=>{console.log('ERR timeout');q.destroy()});
q.on('error',e=>{if(e.code==='ENOTFOUND'||e.code==='EAI_AGAIN')console.log('ERR dns');else if(e.code==='ECONNREFUSED')console.log('ERR refused');else console.log('ERR other')});
"#;

pub const BASH: &str = r#"exec 3<>"/dev/tcp/$1/$2" || exit 7
printf 'GET %s HTTP/1.0\r\nHost: %s:%s\r\nConnection: close\r\n\r\n' "$3" "$1" "$2" >&3
n=0; while IFS= read -r -t "$4" line <&3; do printf '%s\n' "$line"; n=$((n+1)); [ $n -gt 30 ] && break; done"#;

/// The client's own time limit, from the time left to the shared deadline: decimal
/// seconds for curl, python3, node and bash; whole seconds for wget (busybox's takes no
/// fraction; the exec's deadline cuts it off instead).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub secs: String,
    pub whole: String,
}

impl Limit {
    pub fn until(deadline: Instant) -> Limit {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .saturating_sub(RETURN_MARGIN)
            .max(MIN_LIMIT);
        Limit::of(left)
    }

    pub(super) fn of(left: Duration) -> Limit {
        Limit {
            secs: format!("{:.2}", left.as_secs_f64()),
            whole: left.as_secs_f64().ceil().max(1.0).to_string(),
        }
    }
}

/// One URL to try from inside: the URL and, for bash's /dev/tcp, its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub host: String,
    pub port: String,
    pub path: String,
}

impl Target {
    pub fn new(url: &reqwest::Url) -> Target {
        Target {
            url: url.to_string(),
            host: url.host_str().unwrap_or("").to_string(),
            port: url.port_or_known_default().unwrap_or(80).to_string(),
            path: url.path().to_string(),
        }
    }
}

/// Opens a TCP connection to HOST PORT within SECONDS and closes it; sends nothing.
/// What bash's `exec 3<>/dev/tcp/HOST/PORT` does, where there is no bash.
pub const PYTHON_CONNECT: &str = "import socket,sys
socket.create_connection((sys.argv[1],int(sys.argv[2])),float(sys.argv[3])).close()";

/// The same for node, saying on stderr what bash and python3 would have said.
pub const NODE_CONNECT: &str = r#"const s=require("net").connect(+process.argv[2],process.argv[1]);
s.setTimeout(1000*process.argv[3],()=>{console.error("timed out");process.exit(3)});
s.on("connect",()=>{s.destroy();process.exit(0)});
s.on("error",e=>{console.error(e.code==="ECONNREFUSED"?"Connection refused":/UNREACH/.test(e.code)?"Network is unreachable":"error");process.exit(1)})"#;

/// The argv that opens (and closes) a connection to `to` with `program` (bash, python3
/// or node): the per-client path's, where the image has no sh.
pub fn connect_argv(program: &str, to: &Endpoint, limit: &Limit) -> Vec<String> {
    let (host, port) = (to.host().to_string(), to.port().to_string());
    let v: Vec<&str> = match program {
        "python3" => vec!["python3", "-c", PYTHON_CONNECT, &host, &port, &limit.secs],
        "node" => vec!["node", "-e", NODE_CONNECT, &host, &port, &limit.secs],
        _ => vec![
            "bash",
            "-c",
            r#"exec 3<>"/dev/tcp/$1/$2""#,
            "pd-doctor",
            &host,
            &port,
        ],
    };
    v.into_iter().map(String::from).collect()
}

/// The argv of one client fetching `target`: every value one argument, after the options.
pub fn client_argv(client: &str, target: &Target, limit: &Limit) -> Vec<String> {
    let u = target.url.as_str();
    let t = limit.secs.as_str();
    let v: Vec<&str> = match client {
        "curl" => vec![
            "curl",
            "-sS",
            "--max-time",
            t,
            "-o",
            "-",
            "-w",
            "\n__pd_status__%{http_code}",
            "--",
            u,
        ],
        "wget" => vec![
            "wget",
            "-q",
            "-S",
            "-O",
            "-",
            "-T",
            &limit.whole,
            "-t",
            "1",
            u,
        ],
        "python3" => vec!["python3", "-c", PYTHON, u, t],
        "node" => vec!["node", "-e", NODE, u, t],
        _ => vec![
            "bash",
            "-c",
            BASH,
            "pd-doctor",
            &target.host,
            &target.port,
            &target.path,
            t,
        ],
    };
    v.into_iter().map(String::from).collect()
}

/// What a stdio server is sent, as Claude Code starts one: `initialize`, then
/// `notifications/initialized` and `tools/list`. Never `tools/call`: through the proxy a
/// call would take the agent's identity lock on the server.
pub const MESSAGES: &str = concat!(
    r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"pd-doctor","version":"0"}}}"#,
    "\n",
    r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
    "\n",
    r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#,
    "\n",
);

/// What the script is asked about one container.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub host_name: String,
    /// Files in the container to size and digest (at most [`MAX_FILES`]).
    pub files: Vec<String>,
    /// One per server, in the project's order; `None`: not to be reached.
    pub urls: Vec<Option<Target>>,
    /// One per server, like `urls`: the argument vector of the stdio entry in use, its
    /// `env` first as `env NAME=VALUE ...`; `None`: not a stdio entry.
    pub stdio: Vec<Option<Vec<String>>>,
    /// The tmux session Claude Code runs in, to look for ("" = none).
    pub session: String,
    /// Where Claude Code connects first (Anthropic's API, or its proxy): resolved, and
    /// a TCP connection opened and closed. `None`: not asked.
    pub api: Option<Endpoint>,
}

/// The kernel's own clock as pd-doctor's host reads it: its boot id and the time since
/// boot (/proc/uptime) in centiseconds. A container on this very kernel (Docker Engine on
/// Linux) reads the same; one in Docker Desktop's VM has another boot id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelClock {
    pub boot_id: String,
    pub uptime_cs: u64,
}

impl KernelClock {
    /// Now, or `None` where the host has no such clock (not Linux, or unreadable).
    pub fn now() -> Option<KernelClock> {
        #[cfg(target_os = "linux")]
        {
            let read = |p: &str| {
                crate::safefs::read(std::path::Path::new(p), 128, crate::safefs::Links::Refuse)
                    .ok()
                    .map(|b| String::from_utf8_lossy(&b).trim().to_string())
            };
            let boot_id = read("/proc/sys/kernel/random/boot_id")?;
            let uptime = read("/proc/uptime")?;
            let (secs, cs) = uptime.split_whitespace().next()?.split_once('.')?;
            let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !ok(&boot_id.replace('-', "")) || !ok(secs) || cs.len() != 2 || !ok(cs) {
                return None;
            }
            Some(KernelClock {
                boot_id,
                uptime_cs: secs.parse::<u64>().ok()? * 100 + cs.parse::<u64>().ok()?,
            })
        }
        #[cfg(not(target_os = "linux"))]
        None
    }
}

/// A host name (or IP address, without brackets) and a port, checked to be only that:
/// they reach bash's `/dev/tcp/HOST/PORT` inside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    host: String,
    port: u16,
}

impl Endpoint {
    pub fn new(host: &str, port: u16) -> Option<Endpoint> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let fine = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_');
        (!host.is_empty() && host.len() <= 253 && host.bytes().all(fine) && port > 0).then(|| {
            Endpoint {
                host: host.to_ascii_lowercase(),
                port,
            }
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Request {
    pub fn has_stdio(&self) -> bool {
        self.stdio.iter().any(Option::is_some)
    }

    /// `sh -c SCRIPT` and the values, each one argument; `end_in`: when everything the
    /// exec starts is ended, or first looked at when there are `grace_steps`: that many
    /// [`GRACE_STEP`]s more for processes that still use CPU.
    pub fn argv(&self, limit: &Limit, end_in: Duration, grace_steps: u32) -> Vec<String> {
        self.argv_at(limit, end_in, grace_steps, None)
    }

    /// The same, with `end_in` also as a moment of the kernel's clock (`clock`, read
    /// now), which the script keeps where it runs on that kernel.
    pub fn argv_at(
        &self,
        limit: &Limit,
        end_in: Duration,
        grace_steps: u32,
        clock: Option<&KernelClock>,
    ) -> Vec<String> {
        let urls = self.urls.len().min(MAX_URLS);
        let mut argv: Vec<String> = [
            "sh",
            "-c",
            SCRIPT,
            "pd-doctor-inside",
            &self.host_name,
            &self.files.len().min(MAX_FILES).to_string(),
            &limit.secs,
            &limit.whole,
            PYTHON,
            NODE,
            BASH,
            &(4 * urls).to_string(),
            &format!("{:.2}", end_in.as_secs_f64()),
            MESSAGES,
            &self.session,
            &grace_steps.to_string(),
            self.api.as_ref().map_or("", |e| e.host()),
            &self
                .api
                .as_ref()
                .map_or(String::new(), |e| e.port().to_string()),
            PYTHON_CONNECT,
            NODE_CONNECT,
            clock.map_or("", |c| c.boot_id.as_str()),
            &clock.map_or(String::new(), |c| {
                (c.uptime_cs + end_in.as_millis() as u64 / 10).to_string()
            }),
        ]
        .map(String::from)
        .to_vec();
        for target in self.urls.iter().take(MAX_URLS) {
            match target {
                Some(t) => argv.extend([
                    t.url.clone(),
                    t.host.clone(),
                    t.port.clone(),
                    t.path.clone(),
                ]),
                None => argv.extend(std::iter::repeat_n(String::new(), 4)),
            }
        }
        argv.extend(self.files.iter().take(MAX_FILES).cloned());
        for (i, words) in self.stdio.iter().enumerate().take(MAX_URLS) {
            if let Some(words) = words.as_ref().filter(|w| !w.is_empty()) {
                argv.extend([i.to_string(), words.len().to_string()]);
                argv.extend(words.iter().cloned());
            }
        }
        argv
    }
}

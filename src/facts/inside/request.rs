//! What the one exec is asked: the script's argument vector (every value one argument),
//! the per-client command lines of the fallback, and the messages a stdio server is sent.

use std::time::Duration;

use tokio::time::Instant;

use crate::redact::Secret;

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

/// The `initialize` a real MCP client opens with (the first of [`MESSAGES`]): what every
/// client from inside POSTs, so that a healthy server logs a 200, never a 4xx.
macro_rules! initialize {
    () => {
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"pd-doctor","version":"0"}}}"#
    };
}
pub const INITIALIZE: &str = initialize!();
/// The headers of a Streamable HTTP POST, as every MCP client sends them.
pub const ACCEPT: &str = "Accept: application/json, text/event-stream";
pub const CONTENT_TYPE: &str = "Content-Type: application/json";

/// Each program POSTs `initialize` (argv: URL, limit, the body; the entry's headers in
/// the environment, `PD_H`, one `Name: value` a line: never on a command line) and prints `STATUS CODE`, `SESSION ID` when the server
/// keeps sessions (pd-doctor ends it), then the first 300 bytes of the answer; or
/// `ERR dns|refused|timeout|other`.
pub const PYTHON: &str = r#"import sys,socket,urllib.request,urllib.error
h={"Accept":"application/json, text/event-stream","Content-Type":"application/json"}
import os
for l in os.environ.get("PD_H","").splitlines():
    k,_,v=l.partition(":")
    if k.strip(): h[k.strip()]=v.strip()
def say(code,hs,body):
    print("STATUS",code); s=hs.get("Mcp-Session-Id") if hs is not None else None
    if s: print("SESSION",s)
    print(body.decode("utf-8","replace"))
try:
    r=urllib.request.urlopen(urllib.request.Request(sys.argv[1],data=sys.argv[3].encode(),headers=h,method="POST"),timeout=float(sys.argv[2])); say(r.status,r.headers,r.read(300))
except urllib.error.HTTPError as e:
    say(e.code,e.headers,e.read(300))
except urllib.error.URLError as e:
    r=e.reason
    print("ERR dns" if isinstance(r,socket.gaierror) else "ERR refused" if isinstance(r,ConnectionRefusedError) else "ERR timeout" if isinstance(r,(socket.timeout,TimeoutError)) else "ERR other")
except (socket.timeout,TimeoutError):
    print("ERR timeout")
"#;

pub const NODE: &str = r#"const u=new URL(process.argv[1]);const t=1000*Number(process.argv[2]);const d=process.argv[3];
const h={'Accept':'application/json, text/event-stream','Content-Type':'application/json','Content-Length':Buffer.byteLength(d)};
for(const l of (process.env.PD_H||'').split('\n')){const i=l.indexOf(':');if(i>0)h[l.slice(0,i).trim()]=l.slice(i+1).trim()}
const q=require(u.protocol==='https:'?'https':'http').request(u,{method:'POST',headers:h,timeout:t},r=>{let b='';r.on('data',x=>{if(b.length<300)b+=x});r.on('end',()=>{console.log('STATUS '+r.statusCode);const s=r.headers['mcp-session-id'];if(s)console.log('SESSION '+s);console.log(b)})});
q.on('timeout',()=>{console.log('ERR timeout');q.destroy()});
q.on('error',e=>{if(e.code==='ENOTFOUND'||e.code==='EAI_AGAIN')console.log('ERR dns');else if(e.code==='ECONNREFUSED')console.log('ERR refused');else console.log('ERR other')});
q.end(d);
"#;

/// bash's /dev/tcp: $1 host, $2 port, $3 path, $4 limit, $5 the body; the entry's
/// headers in `PD_H`, one a line. The whole answer, its head first, comes back.
pub const BASH: &str = r#"exec 3<>"/dev/tcp/$1/$2" || exit 7
printf 'POST %s HTTP/1.0\r\nHost: %s:%s\r\nAccept: application/json, text/event-stream\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n' "$3" "$1" "$2" "${#5}" >&3
h=${PD_H-}; while [ -n "$h" ]; do printf '%s\r\n' "${h%%$'\n'*}" >&3; case $h in *$'\n'*) h=${h#*$'\n'} ;; *) h= ;; esac; done
printf '\r\n%s' "$5" >&3
n=0; while IFS= read -r -t "$4" line <&3; do printf '%s\n' "$line"; n=$((n+1)); [ $n -gt 30 ] && break; done"#;

/// curl's `-w`: the session the server opened (when it keeps sessions, pd-doctor ends
/// it), then the status, last.
pub const CURL_WRITE_OUT: &str =
    "\n__pd_session__%header{mcp-session-id}\n__pd_status__%{http_code}";

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

/// One URL to try from inside: the URL and, for bash's /dev/tcp, its parts; and the
/// headers the agent's entry sends (its key: without it a keyed server logs a 401).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub url: String,
    pub host: String,
    pub port: String,
    pub path: String,
    pub headers: Vec<(String, Secret)>,
}

impl Target {
    pub fn new(url: &reqwest::Url) -> Target {
        Target {
            url: url.to_string(),
            host: url.host_str().unwrap_or("").to_string(),
            port: url.port_or_known_default().unwrap_or(80).to_string(),
            path: url.path().to_string(),
            headers: Vec::new(),
        }
    }

    /// The same, sending `headers` as the agent's Claude Code does. A header that could
    /// not travel as one line of a request (a name that is not a token, a value with a
    /// control character) is left out: Claude Code could not send it either.
    pub fn with_headers(mut self, headers: &[(String, Secret)]) -> Target {
        self.headers = headers
            .iter()
            .filter(|(n, v)| {
                !n.is_empty()
                    && n.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b))
                    && !v.expose().chars().any(|c| c.is_control())
            })
            .cloned()
            .collect();
        self
    }

    /// The headers, one `Name: value` a line: `PD_H` of a client's own exec.
    pub fn header_lines(&self) -> String {
        self.headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.expose()))
            .collect::<Vec<_>>()
            .join("\n")
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

/// The argv of one client POSTing `initialize` to `target` with the MCP headers: every
/// value one argument, after the options. The entry's own headers are not on it (an
/// exec's argv is in the engine's events): python3, node and bash read them from the
/// exec's environment ([`client_env`]); curl and wget, in an image without `sh`, go
/// without them (a keyed server answers 401, still proof of the path).
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
            CURL_WRITE_OUT,
            "-H",
            ACCEPT,
            "-H",
            CONTENT_TYPE,
            "--data-raw",
            INITIALIZE,
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
            "--header",
            ACCEPT,
            "--header",
            CONTENT_TYPE,
            "--post-data",
            INITIALIZE,
            u,
        ],
        "python3" => vec!["python3", "-c", PYTHON, u, t, INITIALIZE],
        "node" => vec!["node", "-e", NODE, u, t, INITIALIZE],
        _ => vec![
            "bash",
            "-c",
            BASH,
            "pd-doctor",
            &target.host,
            &target.port,
            &target.path,
            t,
            INITIALIZE,
        ],
    };
    v.into_iter().map(String::from).collect()
}

/// The environment of a client's own exec: its target's headers in `PD_H`.
pub fn client_env(target: &Target) -> Vec<String> {
    match target.header_lines() {
        lines if lines.is_empty() => Vec::new(),
        lines => vec![format!("PD_H={lines}")],
    }
}

/// What a stdio server is sent, as Claude Code starts one: `initialize`, then
/// `notifications/initialized` and `tools/list`. Never `tools/call`: through the proxy a
/// call would take the agent's identity lock on the server.
pub const MESSAGES: &str = concat!(
    initialize!(),
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

    /// The exec's environment: every URL's headers in `PD_HEADERS`, one `INDEX Name:
    /// value` a line. Not on the command line: the engine's events name an exec's argv.
    pub fn env(&self) -> Vec<String> {
        let lines: Vec<String> = self
            .urls
            .iter()
            .take(MAX_URLS)
            .enumerate()
            .filter_map(|(i, t)| Some((i, t.as_ref()?)))
            .flat_map(|(i, t)| {
                t.header_lines()
                    .lines()
                    .map(|l| format!("{i} {l}"))
                    .collect::<Vec<_>>()
            })
            .collect();
        if lines.is_empty() {
            Vec::new()
        } else {
            vec![format!("PD_HEADERS={}", lines.join("\n"))]
        }
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

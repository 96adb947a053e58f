//! pd-doctor against the real Claude Code CLI (2.1.327, docker/lab/fetch-claude.sh), in
//! both layouts. Each lab state is built as the other lab tests build it, with two
//! agents (claude, qa) and two servers (qms, git); pd-doctor looks first, then
//! `claude mcp list` runs in each container (it writes into `.claude.json`). Pair by pair
//! (agent, server):
//!
//! - Claude Code `✔ Connected` → pd-doctor fails nothing on the pair's path;
//! - anything else, or the server not listed → pd-doctor warns or fails on that path;
//! - when the report has `claude_code` (pd-doctor's own prediction of Claude Code's
//!   verdict), its `expected` is what Claude Code printed.
//!
//! The pair's path is every check whose subject has no agent or this agent, and no
//! server or this server. Where Claude Code is misled and pd-doctor is right, the pair
//! is in [`KNOWN`], with the reason. States run concurrently: most of their time is
//! Claude Code waiting for servers that refuse (the hub proxy's retries, ~25 s) or hang
//! (its MCP timeout, 30 s in the primer layout and 60 s in the hub's).

mod common;

use std::fmt::Write as _;
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::claude::{self, parse_list, ClientList, Listed, Verdict};
use common::hub::{self, hub_api, hub_image, hub_tree};
use common::lab::{self, docker_or_skip, Lab};
use common::servers::{self, Bind, Fault, McpOptions};
use common::{free_port, run_json, Tree};

const AGENTS: [&str; 2] = ["claude", "qa"];
const SERVERS: [&str; 2] = ["qms", "git"];

/// Disagreements where pd-doctor is right and Claude Code is misled. A pair matches
/// when its state, agent, server and Claude Code's verdict are these and pd-doctor's
/// path has `finding` ("id status cause"); it is then not a disagreement.
struct Known {
    state: &'static str,
    agent: &'static str,
    server: &'static str,
    claude: &'static str,
    finding: &'static str,
    reason: &'static str,
}

const KNOWN: &[Known] = &[Known {
    state: "primer/wrong-port",
    agent: "qa",
    server: "qms",
    claude: "connected",
    finding: "config.server_entry[qa,qms] fail wrong-server",
    reason: "qa's user-scope qms entry names git's port: Claude Code connects, to git \
             (which needs no key), and would call git's tools as qms's",
}];

// ---------------------------------------------------------------------------------
// The primer layout (L0): HTTP entries, the entrypoint copies docker/.mcp.json into the
// user scope. qa carries each state's defect and claude is the control, unless the
// defect is on the host (a server), which both agents see.
// ---------------------------------------------------------------------------------

/// How the primer's two servers run.
#[derive(Clone, Copy, Debug)]
enum PrimerServe {
    /// qms requiring X-API-Key, git open, both reachable from containers.
    Pair,
    /// Nothing listens on git's port.
    GitStopped,
    /// qms on 127.0.0.1 only.
    QmsLoopbackOnly,
    /// git accepts connections and never answers.
    GitHung,
    /// qms requiring both X-API-Key and Authorization (the project's workaround for
    /// Claude Code's OAuth discovery).
    QmsBothHeaders,
}

/// How qa's container is started.
#[derive(Clone, Copy, Debug, PartialEq)]
enum PrimerStart {
    Standard,
    /// No `--add-host`, and a DNS server that is not there (nothing leaves the host).
    NoHostGateway,
    /// docker/.mcp.json not mounted over /pipe-dream/.mcp.json: the container sees the
    /// host's own (a stdio qms with a Windows path).
    NoMcpOverlay,
}

struct PrimerState {
    name: &'static str,
    serve: PrimerServe,
    qa_fixture: &'static str,
    qa_start: PrimerStart,
    /// The approval overlay (`Tree::approve`), as Pipe Dream has it. Without the folder
    /// trust, which no fixture but declined-git has, Claude Code leaves every
    /// project-scope entry pending however approved, and uses the user-scope entries the
    /// fixtures are about.
    approve: bool,
    /// A change to qa's config dir after its fixture was copied.
    qa_edit: fn(&Tree),
}

const PRIMER_HEALTHY: PrimerState = PrimerState {
    name: "healthy",
    serve: PrimerServe::Pair,
    qa_fixture: "healthy",
    qa_start: PrimerStart::Standard,
    approve: true,
    qa_edit: |_| {},
};

/// A fixture of qa's, approved as the healthy state is.
const fn fixture(name: &'static str) -> PrimerState {
    PrimerState {
        name,
        qa_fixture: name,
        ..PRIMER_HEALTHY
    }
}

/// The states (set up in turns: see [`SETUP_TURNS`]).
const PRIMER_STATES: &[PrimerState] = &[
    PrimerState {
        name: "git-hung",
        serve: PrimerServe::GitHung,
        ..PRIMER_HEALTHY
    },
    PrimerState {
        name: "git-stopped",
        serve: PrimerServe::GitStopped,
        ..PRIMER_HEALTHY
    },
    PRIMER_HEALTHY,
    PrimerState {
        name: "healthy-unapproved",
        approve: false,
        ..PRIMER_HEALTHY
    },
    // Approved but the folder never trusted: Claude Code uses qa's user-scope qms (on a
    // port nothing listens on), not the approved project entry.
    PrimerState {
        name: "approved-untrusted-stale-user",
        qa_edit: stale_user_qms,
        ..PRIMER_HEALTHY
    },
    PrimerState {
        name: "qms-loopback-only",
        serve: PrimerServe::QmsLoopbackOnly,
        ..PRIMER_HEALTHY
    },
    PrimerState {
        name: "no-host-gateway",
        qa_start: PrimerStart::NoHostGateway,
        ..PRIMER_HEALTHY
    },
    PrimerState {
        name: "no-mcp-overlay",
        qa_start: PrimerStart::NoMcpOverlay,
        ..PRIMER_HEALTHY
    },
    fixture("localhost-urls"),
    fixture("wrong-port"),
    fixture("sse-transport"),
    PrimerState {
        serve: PrimerServe::QmsBothHeaders,
        ..fixture("missing-auth-header")
    },
    fixture("git-marker-only"),
    fixture("marker-without-config"),
    fixture("declined-git"),
];

/// qa's user-scope qms pointing at a port nothing listens on.
fn stale_user_qms(t: &Tree) {
    let url = format!("http://host.docker.internal:{}/mcp", free_port());
    edit_claude_json(t, "qa", |doc| {
        doc["mcpServers"]["qms"]["url"] = url.into();
    });
}

/// The ports of qms and git, served as `serve` says (the servers live as long as the
/// test's runtime).
async fn primer_servers(serve: PrimerServe) -> (u16, u16) {
    let qms = |bind, authorization: Option<&str>| {
        servers::mcp_server(McpOptions {
            key: Some("qms-internal".into()),
            authorization: authorization.map(str::to_string),
            bind,
            ..Default::default()
        })
    };
    let git = || {
        servers::mcp_server(McpOptions {
            bind: Bind::Reachable,
            ..Default::default()
        })
    };
    match serve {
        PrimerServe::Pair => (qms(Bind::Reachable, None).await.port, git().await.port),
        PrimerServe::GitStopped => (qms(Bind::Reachable, None).await.port, free_port()),
        PrimerServe::QmsLoopbackOnly => (qms(Bind::Loopback, None).await.port, git().await.port),
        PrimerServe::GitHung => (
            qms(Bind::Reachable, None).await.port,
            servers::fault_server_on(Fault::Hang, Bind::Reachable)
                .await
                .port,
        ),
        PrimerServe::QmsBothHeaders => (
            qms(Bind::Reachable, Some(hub::AUTHORIZATION)).await.port,
            git().await.port,
        ),
    }
}

/// Builds and starts one primer state: the tree (claude healthy, qa with its fixture),
/// then both containers of the image with the real CLI.
async fn start_primer(state: &'static PrimerState, image: String) -> Started {
    let (qms, git) = primer_servers(state.serve).await;
    blocking(move || {
        let lab = Lab::new(&format!("primer-{}", state.name));
        let t = Tree::new(qms, git);
        t.agent("claude", "healthy");
        t.agent("qa", state.qa_fixture);
        lab.configure(&t, "");
        if state.approve {
            t.approve();
        }
        (state.qa_edit)(&t);
        lab.start_agent(&t, "claude", &image, &[]);
        start_primer_qa(&lab, &t, &image, state.qa_start);
        Started {
            state: format!("primer/{}", state.name),
            lab,
            tree: t,
        }
    })
    .await
}

fn start_primer_qa(lab: &Lab, t: &Tree, image: &str, start: PrimerStart) {
    let mut args = Lab::standard_args(t, "qa");
    match start {
        PrimerStart::Standard => args.push(lab::GATEWAY.into()),
        PrimerStart::NoHostGateway => args.extend(["--dns".to_string(), "127.0.0.1".into()]),
        PrimerStart::NoMcpOverlay => {
            let at = args
                .iter()
                .position(|a| a.ends_with(":/pipe-dream/.mcp.json:ro"))
                .expect("the .mcp.json overlay among the standard mounts");
            args.drain(at - 1..=at);
            args.push(lab::GATEWAY.into());
        }
    }
    lab.start(&lab.name("qa"), true, &args, &[image]);
}

// ---------------------------------------------------------------------------------
// The Agent Hub layout (L2): a stdio proxy entry per server in the project scope only,
// approved by the settings overlay; the entrypoint clears `.claude.json`'s MCP state at
// every start. The tree's `.mcp.json` and overlay are shared by both agents, so their
// defects are both agents'; defects in `.claude.json` are qa's.
// ---------------------------------------------------------------------------------

/// How git runs in the hub layout (qms always requires its key and Authorization).
#[derive(Clone, Copy, Debug)]
enum HubServe {
    Both,
    GitRefused,
    GitHung,
    /// git answers every request with 500.
    Git500,
}

struct HubState {
    name: &'static str,
    serve: HubServe,
    /// A change to the tree before the containers start.
    before: fn(&Tree),
    /// A change to qa's `.claude.json` after its container started (the entrypoint
    /// rewrites the file at start).
    qa_after: fn(&Tree),
}

const HUB_HEALTHY: HubState = HubState {
    name: "healthy",
    serve: HubServe::Both,
    before: |_| {},
    qa_after: |_| {},
};

/// The states (set up in turns: see [`SETUP_TURNS`]).
const HUB_STATES: &[HubState] = &[
    HubState {
        name: "upstream-hung",
        serve: HubServe::GitHung,
        ..HUB_HEALTHY
    },
    HubState {
        name: "upstream-refused",
        serve: HubServe::GitRefused,
        ..HUB_HEALTHY
    },
    HubState {
        name: "upstream-500",
        serve: HubServe::Git500,
        ..HUB_HEALTHY
    },
    HubState {
        name: "wrong-key",
        before: |t| {
            edit_proxy_args(t, "qms", |args| {
                for a in args.iter_mut() {
                    if a.starts_with("X-API-Key=") {
                        *a = "X-API-Key=wrong-key".into();
                    }
                }
            })
        },
        ..HUB_HEALTHY
    },
    HubState {
        name: "wrong-path",
        before: |t| {
            edit_proxy_args(t, "git", |args| {
                let url = args
                    .iter_mut()
                    .find(|a| a.starts_with("http://"))
                    .expect("git's upstream URL");
                *url = url.replace("/mcp", "/nope");
            })
        },
        ..HUB_HEALTHY
    },
    HubState {
        name: "proxy-path-wrong",
        before: |t| edit_proxy_args(t, "git", |args| args[0] = "/proxy/gone.py".into()),
        ..HUB_HEALTHY
    },
    HUB_HEALTHY,
    HubState {
        name: "untrusted",
        qa_after: |t| {
            edit_claude_json(t, "qa", |doc| {
                doc["projects"]["/pipe-dream"]
                    .as_object_mut()
                    .expect("the entrypoint's project entry")
                    .remove("hasTrustDialogAccepted");
            })
        },
        ..HUB_HEALTHY
    },
    HubState {
        name: "unapproved",
        before: unapproved,
        ..HUB_HEALTHY
    },
    // qa declined git at Claude Code's prompt, while the overlay approves it.
    HubState {
        name: "declined-git",
        qa_after: |t| decline_git(t, "qa"),
        ..HUB_HEALTHY
    },
    // The same without the overlay's approval: only qa's own answers (qms yes, git no).
    HubState {
        name: "declined-git-unapproved",
        before: unapproved,
        qa_after: |t| decline_git(t, "qa"),
        ..HUB_HEALTHY
    },
];

/// The settings overlay with its permissions but no `enabledMcpjsonServers`.
fn unapproved(t: &Tree) {
    let mut doc: Value = serde_json::from_str(&hub::claude_settings_json()).unwrap();
    doc.as_object_mut().unwrap().remove("enabledMcpjsonServers");
    t.write(
        "agent-hub/docker/.claude-settings.json",
        &serde_json::to_string_pretty(&doc).unwrap(),
    );
}

/// `agent`'s answers at Claude Code's prompt for the project's servers: qms yes, git no.
fn decline_git(t: &Tree, agent: &str) {
    edit_claude_json(t, agent, |doc| {
        let project = &mut doc["projects"]["/pipe-dream"];
        project["enabledMcpjsonServers"] = serde_json::json!(["qms"]);
        project["disabledMcpjsonServers"] = serde_json::json!(["git"]);
    });
}

/// qms and git's ports as `serve` says; both real servers require the proxy's headers.
async fn hub_servers(serve: HubServe) -> (u16, u16) {
    let keyed = |key: &str| {
        servers::mcp_server(McpOptions {
            key: Some(key.into()),
            authorization: Some(hub::AUTHORIZATION.into()),
            bind: Bind::Reachable,
            ..Default::default()
        })
    };
    let qms = keyed(hub::QMS_KEY).await.port;
    let git = match serve {
        HubServe::Both => keyed(hub::GIT_KEY).await.port,
        HubServe::GitRefused => free_port(),
        HubServe::GitHung => {
            servers::fault_server_on(Fault::Hang, Bind::Reachable)
                .await
                .port
        }
        HubServe::Git500 => {
            let boom = Fault::Status(500, "text/plain", "boom".into());
            servers::fault_server_on(boom, Bind::Reachable).await.port
        }
    };
    (qms, git)
}

/// Builds and starts one hub state: the tree, the Hub's API stand-in, both containers
/// as the Hub starts them (the tmux session runs the idle stand-in, not the real CLI).
async fn start_hub(state: &'static HubState, image: String) -> Started {
    let (qms, git) = hub_servers(state.serve).await;
    let api = hub_api(&AGENTS).await;
    blocking(move || {
        let lab = Lab::new(&format!("hub-{}", state.name));
        let t = hub_tree(qms, git, &AGENTS);
        (state.before)(&t);
        hub::age(&t);
        lab.configure_hub(&t, &image, api);
        for agent in AGENTS {
            lab.start_hub_agent_running(&t, agent, &image, &[], claude::STAND_IN);
        }
        (state.qa_after)(&t);
        Started {
            state: format!("hub/{}", state.name),
            lab,
            tree: t,
        }
    })
    .await
}

/// Both layouts in one test, so that no pd-doctor run shares the machine with the
/// dozens of Claude Code processes the comparison starts (on two cores those made a
/// 5 s reach time out where Claude Code, given a minute, connected).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn both_layouts_agree_with_claude_code() {
    let test = "both_layouts_agree_with_claude_code";
    let (Some(primer), Some(hub)) = (
        image_or_skip(test, || lab::image("curl")).await,
        image_or_skip(test, hub_image).await,
    ) else {
        return;
    };
    let primer = PRIMER_STATES
        .iter()
        .map(move |state| Box::pin(start_primer(state, primer.clone())) as Starting);
    let hub = HUB_STATES
        .iter()
        .map(move |state| Box::pin(start_hub(state, hub.clone())) as Starting);
    compare(test, primer.chain(hub)).await;
}

/// A state being set up.
type Starting = std::pin::Pin<Box<dyn Future<Output = Started> + Send>>;

// ---------------------------------------------------------------------------------
// Tree edits shared by the states.
// ---------------------------------------------------------------------------------

/// Rewrites `agent`'s `.claude.json` through `edit`.
fn edit_claude_json(t: &Tree, agent: &str, edit: impl FnOnce(&mut Value)) {
    let path = t.path(&format!("{}/.claude.json", t.config_dir(agent)));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON ({e}): {text}", path.display()));
    edit(&mut doc);
    std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
}

/// Rewrites the args of `server`'s proxy entry in the hub tree's `.mcp.json`.
fn edit_proxy_args(t: &Tree, server: &str, edit: impl FnOnce(&mut Vec<String>)) {
    let mut args = hub::proxy_args(t, server);
    edit(&mut args);
    let rel = "agent-hub/docker/.mcp.json";
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(t.path(rel)).unwrap())
        .expect("agent-hub/docker/.mcp.json");
    doc["mcpServers"][server]["args"] = serde_json::json!(args);
    t.write(rel, &serde_json::to_string_pretty(&doc).unwrap());
}

// ---------------------------------------------------------------------------------
// Running the states and comparing.
// ---------------------------------------------------------------------------------

/// One lab state with its containers running; dropping it removes them.
struct Started {
    state: String,
    lab: Lab,
    tree: Tree,
}

/// A check on a pair's path that is not ok.
#[derive(Debug, Clone)]
struct Finding {
    id: String,
    status: String,
    cause: String,
    message: String,
}

impl Finding {
    fn summary(&self) -> String {
        format!("{} {} {}", self.id, self.status, self.cause)
    }
}

/// What both sides said about one (agent, server) pair of one state.
struct Pair {
    state: String,
    agent: &'static str,
    server: &'static str,
    claude: Option<Listed>,
    findings: Vec<Finding>,
    /// pd-doctor's `claude_code` entry for the pair: None when the report has no
    /// `claude_code`, `Some(None)` when it has one but not for this pair.
    predicted: Option<Option<Value>>,
}

impl Pair {
    fn claude_word(&self) -> &'static str {
        self.claude
            .as_ref()
            .map_or("not-configured", |l| l.verdict.word())
    }

    /// The KNOWN entry this pair matches, if any.
    fn known(&self) -> Option<&'static Known> {
        KNOWN.iter().find(|k| {
            k.state == self.state
                && k.agent == self.agent
                && k.server == self.server
                && k.claude == self.claude_word()
                && self.findings.iter().any(|f| f.summary() == k.finding)
        })
    }

    /// Why pd-doctor's findings disagree with Claude Code's verdict, if they do.
    fn verdict_disagreement(&self) -> Option<String> {
        let connected = matches!(
            self.claude.as_ref().map(|l| &l.verdict),
            Some(Verdict::Connected)
        );
        let fails = self.findings.iter().any(|f| f.status == "fail");
        if connected && fails {
            Some("Claude Code connects, pd-doctor fails the path".into())
        } else if !connected && self.findings.is_empty() {
            Some(format!(
                "Claude Code says {}, pd-doctor finds nothing on the path",
                self.claude_word()
            ))
        } else {
            None
        }
    }

    /// Why pd-doctor's `claude_code` prediction differs from Claude Code's verdict.
    fn prediction_disagreement(&self) -> Option<String> {
        let Some(entry) = self.predicted.as_ref()? else {
            return Some("claude_code has no entry for this pair".into());
        };
        let expected = entry["expected"].as_str().unwrap_or("(no expected)");
        // Declined or denied, a server is not listed, as one never configured is not;
        // and with every check run, pd-doctor always knows ("unknown" is a miss).
        let claude = match self.claude_word() {
            "not-configured" if expected == "disabled" => "disabled",
            word => word,
        };
        (expected != claude).then(|| {
            format!(
                "claude_code expects {expected}, Claude Code says {}",
                self.claude_word()
            )
        })
    }

    fn disagreements(&self) -> Vec<String> {
        let verdict = self
            .verdict_disagreement()
            .filter(|_| self.known().is_none());
        verdict
            .into_iter()
            .chain(self.prediction_disagreement())
            .collect()
    }
}

/// The non-ok checks on the path of (agent, server): subject's agent absent or
/// `agent`, server absent or `server`.
fn path_findings(doc: &Value, agent: &str, server: &str) -> Vec<Finding> {
    let on = |v: &Value, want: &str| v.as_str().is_none_or(|s| s == want);
    doc["checks"]
        .as_array()
        .expect("checks in pd-doctor's report")
        .iter()
        .filter(|c| on(&c["subject"]["agent"], agent) && on(&c["subject"]["server"], server))
        .filter(|c| c["status"] == "warn" || c["status"] == "fail")
        .map(|c| Finding {
            id: text(&c["id"]),
            status: text(&c["status"]),
            cause: text(&c["cause"]),
            message: text(&c["message"]),
        })
        .collect()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// pd-doctor's `claude_code` entry for the pair (see [`Pair::predicted`]).
fn prediction(doc: &Value, agent: &str, server: &str) -> Option<Option<Value>> {
    let entries = doc.get("claude_code")?.as_array()?;
    Some(
        entries
            .iter()
            .find(|e| e["agent"] == agent && e["server"] == server)
            .cloned(),
    )
}

/// How many states are set up at once (containers started, pd-doctor run). Setting up
/// costs CPU (the engine, the entrypoints, the stdio proxies pd-doctor starts, and
/// pd-doctor waits for a stdio server still at work: slow is not hung); on two shared
/// cores two dozen at once take 30 s each. In turns, each takes seconds; Claude Code's
/// waits, which come after every diagnosis, overlap freely.
const SETUP_TURNS: usize = 3;

/// pd-doctor's report on a started state: first, as Claude Code writes into
/// `.claude.json`. At the default timeout, which waits for a stdio server still at work
/// as Claude Code does (its `MCP_TIMEOUT`): a given `--timeout` is kept to the letter,
/// and a dozen cold proxies starting at once on two cores take longer than 5 s.
async fn doctor(started: &Started) -> (Value, Duration) {
    let run = run_json(started.tree.root(), &[]).await;
    (run.json(), run.elapsed)
}

/// `claude mcp list` in both containers at once, then the pairs of the state.
async fn examine(
    started: Started,
    doc: Value,
    doctor_time: Duration,
    clock: Instant,
) -> StateResult {
    let names = AGENTS.map(|a| started.lab.name(a));
    let (claude, qa) = tokio::join!(claude::mcp_list(&names[0]), claude::mcp_list(&names[1]));
    let lists = [("claude", claude), ("qa", qa)];
    let mut pairs = Vec::new();
    for (agent, list) in &lists {
        for server in SERVERS {
            pairs.push(Pair {
                state: started.state.clone(),
                agent,
                server,
                claude: list.get(server).cloned(),
                findings: path_findings(&doc, agent, server),
                predicted: prediction(&doc, agent, server),
            });
        }
    }
    StateResult {
        state: started.state.clone(),
        pairs,
        lists: Vec::from(lists),
        doctor_time,
        wall: clock.elapsed(),
    }
}

struct StateResult {
    state: String,
    pairs: Vec<Pair>,
    lists: Vec<(&'static str, ClientList)>,
    doctor_time: Duration,
    wall: Duration,
}

impl StateResult {
    /// What is wrong with the lab itself rather than with pd-doctor: a `claude mcp list`
    /// that did not end well, or a healthy state Claude Code does not find healthy.
    fn lab_problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (agent, list) in &self.lists {
            if list.code != Some(0) {
                problems.push(format!(
                    "{} {agent}: claude mcp list ended with {:?}:\n{}",
                    self.state, list.code, list.raw
                ));
            }
        }
        if self.state.ends_with("/healthy") {
            for p in &self.pairs {
                if p.claude_word() != "connected" {
                    problems.push(format!(
                        "{} {} {}: a healthy lab, yet Claude Code says {}",
                        self.state,
                        p.agent,
                        p.server,
                        p.claude_word()
                    ));
                }
            }
        }
        problems
    }
}

/// Sets up and diagnoses every state, a few at a time; then asks Claude Code in every
/// container at once (its waits overlap); and fails with the table of every pair when
/// any pair disagrees (the table is printed in any case).
async fn compare(test: &str, states: impl Iterator<Item = Starting>) {
    let clock = Instant::now();
    let turns = std::sync::Arc::new(tokio::sync::Semaphore::new(SETUP_TURNS));
    let mut setups = Vec::new();
    for start in states {
        // Taken here, in the table's order, not by the tasks in whatever order they run.
        let turn = turns.clone().acquire_owned().await.expect("never closed");
        setups.push(tokio::spawn(async move {
            let since = Instant::now();
            let started = start.await;
            let (doc, doctor_time) = doctor(&started).await;
            drop(turn);
            (started, doc, doctor_time, since)
        }));
    }
    let mut broken = Vec::new();
    let mut diagnosed = Vec::new();
    for setup in setups {
        match setup.await {
            Ok(done) => diagnosed.push(done),
            Err(e) => broken.push(panic_text(e)),
        }
    }
    // Only now, every diagnosis done: Claude Code everywhere at once.
    let examined: Vec<_> = diagnosed
        .into_iter()
        .map(|(started, doc, doctor_time, since)| {
            tokio::spawn(examine(started, doc, doctor_time, since))
        })
        .collect();
    let mut results = Vec::new();
    for task in examined {
        match task.await {
            Ok(result) => results.push(result),
            Err(e) => broken.push(panic_text(e)),
        }
    }
    let wall = clock.elapsed();
    let report = table(&results);
    eprintln!("{test}: {} states in {wall:.1?}\n{report}", results.len());
    let lab_problems: Vec<String> = results.iter().flat_map(StateResult::lab_problems).collect();
    assert!(
        broken.is_empty() && lab_problems.is_empty(),
        "{test}: the lab itself failed:\n{}\n{}",
        broken.join("\n"),
        lab_problems.join("\n")
    );
    let disagreeing: Vec<&Pair> = results
        .iter()
        .flat_map(|r| &r.pairs)
        .filter(|p| !p.disagreements().is_empty())
        .collect();
    assert!(
        disagreeing.is_empty(),
        "{test}: {} pairs disagree with Claude Code:\n{}\n(every pair above)",
        disagreeing.len(),
        disagreeing.iter().map(|p| describe(p)).collect::<String>()
    );
}

fn panic_text(e: tokio::task::JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a state panicked".into()),
        Err(e) => e.to_string(),
    }
}

/// Every pair of every state, disagreements marked, with the timings.
fn table(results: &[StateResult]) -> String {
    let mut out = String::new();
    for r in results {
        let lists: Vec<String> = r
            .lists
            .iter()
            .map(|(a, l)| format!("claude mcp list in {a} {:.1?}", l.elapsed))
            .collect();
        let _ = writeln!(
            out,
            "== {} (state {:.1?}: pd-doctor {:.1?}, {})",
            r.state,
            r.wall,
            r.doctor_time,
            lists.join(", ")
        );
        for p in &r.pairs {
            out.push_str(&describe(p));
        }
    }
    let _ = writeln!(
        out,
        "-- known differences (pd-doctor right, Claude Code misled):"
    );
    for k in KNOWN {
        let seen = results
            .iter()
            .flat_map(|r| &r.pairs)
            .any(|p| p.known().is_some_and(|m| std::ptr::eq(m, k)));
        let _ = writeln!(
            out,
            "   {} {} {} ({}): {}{}",
            k.state,
            k.agent,
            k.server,
            k.finding,
            k.reason,
            if seen { "" } else { " [not seen in this run]" }
        );
    }
    out
}

/// One pair: its verdicts, pd-doctor's non-ok checks on the path, and why it disagrees.
fn describe(p: &Pair) -> String {
    let mut out = String::new();
    let disagreements = p.disagreements();
    let warns_only =
        p.claude_word() != "connected" && p.findings.iter().all(|f| f.status == "warn");
    let mark = if !disagreements.is_empty() {
        "DISAGREE"
    } else if p.known().is_some() {
        "known"
    } else if warns_only {
        // Agreement by the rule, yet pd-doctor fails nothing where Claude Code fails.
        "agree, warns only"
    } else {
        "agree"
    };
    let claude = p
        .claude
        .as_ref()
        .map_or("(not listed: not configured)".to_string(), |l| {
            l.line.clone()
        });
    let _ = writeln!(out, "  [{mark}] {} {} {}", p.state, p.agent, p.server);
    let _ = writeln!(out, "      claude:    {claude}");
    if p.findings.is_empty() {
        let _ = writeln!(out, "      pd-doctor: nothing on the path");
    }
    for f in &p.findings {
        let _ = writeln!(out, "      pd-doctor: {} — {}", f.summary(), f.message);
    }
    match &p.predicted {
        None => {}
        Some(None) => {
            let _ = writeln!(out, "      claude_code: (no entry)");
        }
        Some(Some(e)) => {
            let _ = writeln!(out, "      claude_code: {e}");
        }
    }
    if let Some(k) = p.known() {
        let _ = writeln!(out, "      known: {}", k.reason);
    }
    for d in disagreements {
        let _ = writeln!(out, "      why: {d}");
    }
    out
}

// ---------------------------------------------------------------------------------
// Set-up helpers.
// ---------------------------------------------------------------------------------

/// Docker and the CLI are there (else a skip, or a failure when required), and the lab
/// image `base` builds, with the real CLI on top.
async fn image_or_skip(test: &str, base: fn() -> String) -> Option<String> {
    if !docker_or_skip(test) {
        return None;
    }
    claude::cli_or_skip(test)?;
    let clock = Instant::now();
    let image = blocking(move || claude::with_claude(&base())).await;
    eprintln!("{test}: image {image} ready in {:.1?}", clock.elapsed());
    Some(image)
}

/// Runs blocking work (docker commands, waits) off the runtime's workers, which serve
/// the tests' MCP servers meanwhile; a panic in it goes on as this task's.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

// ---------------------------------------------------------------------------------
// The parser of `claude mcp list`, on lines the real CLI printed.
// ---------------------------------------------------------------------------------

#[test]
fn claude_mcp_list_lines_are_read_by_their_last_status() {
    let text = "Checking MCP server health…\n\
        \n\
        qms: http://host.docker.internal:18000/mcp (HTTP) - ✘ Failed to connect — ECONNREFUSED: Unable to connect. Is the computer able to access the url?\n\
        git: python3 /proxy/mcp_proxy.py http://host.docker.internal:18001/mcp --retries 3 --timeout 10000 - ⏸ Pending approval (run `claude` to approve)\n\
        ok-1: python3 /x.py --name a - b - ✔ Connected\n\
        auth: https://example.com/mcp (HTTP) - ⚠ Needs authentication\n\
        off: python3 /x.py - Disabled\n\
        new: python3 /x.py - ◆ Something new\n\
        \n\
        MCP config diagnostics ⚠\n\
        \n\
        [Conflicting scopes]\n\
        ├ Server \"qms\" is defined in multiple scopes with different endpoints: user (http://a), project (http://b).\n\
        qms: http://elsewhere - ✔ Connected\n";
    let servers = parse_list(text);
    let verdict = |name: &str| servers.get(name).map(|l| l.verdict.clone());
    assert_eq!(
        verdict("qms"),
        Some(Verdict::Failed(
            "ECONNREFUSED: Unable to connect. Is the computer able to access the url?".into()
        ))
    );
    assert_eq!(verdict("git"), Some(Verdict::PendingApproval));
    assert_eq!(verdict("ok-1"), Some(Verdict::Connected));
    assert_eq!(verdict("auth"), Some(Verdict::NeedsAuthentication));
    assert_eq!(verdict("off"), Some(Verdict::Disabled));
    assert_eq!(
        verdict("new"),
        Some(Verdict::Other("◆ Something new".into()))
    );
    assert_eq!(servers.len(), 6, "{servers:#?}");
    assert!(servers["git"]
        .line
        .starts_with("git: python3 /proxy/mcp_proxy.py"));
    // A line of escapes and a huge line are kept, capped, never trusted as a status.
    let hostile = format!("evil: {} - ✔ Connected", "x".repeat(100_000));
    let evil = &parse_list(&hostile)["evil"];
    assert_eq!(evil.verdict, Verdict::Connected);
    assert!(evil.line.chars().count() <= 401, "{}", evil.line.len());
    assert!(parse_list("Checking MCP server health…\nNo MCP servers configured.\n").is_empty());
}

/// The comparison of pd-doctor's `claude_code` prediction, which the report does not
/// carry yet: skipped without the key, required per pair with it, `unknown` never wrong.
#[test]
fn claude_code_predictions_are_compared_only_when_reported() {
    let doc = |claude_code: Option<Value>| {
        let mut doc = serde_json::json!({"checks": [
            {"id": "server.mcp[git]", "subject": {"server": "git"}, "status": "fail",
             "cause": "timeout", "message": "no answer"},
            {"id": "container.mounts[qa]", "subject": {"agent": "qa"}, "status": "warn",
             "cause": "x", "message": "qa's"},
            {"id": "docker.engine", "subject": {}, "status": "ok", "cause": "ok", "message": ""}
        ]});
        if let Some(entries) = claude_code {
            doc["claude_code"] = entries;
        }
        doc
    };
    let pair = |doc: &Value, agent: &'static str, server: &'static str, line: Option<&str>| Pair {
        state: "lab/test".into(),
        agent,
        server,
        claude: line.and_then(|l| parse_list(l).remove(server)),
        findings: path_findings(doc, agent, server),
        predicted: prediction(doc, agent, server),
    };
    let failed = "git: http://h/mcp (HTTP) - ✘ Failed to connect — MCP server \"git\" connection timed out after 30000ms";

    let before = doc(None);
    let p = pair(&before, "claude", "git", Some(failed));
    assert_eq!(
        p.findings.iter().map(Finding::summary).collect::<Vec<_>>(),
        ["server.mcp[git] fail timeout"],
        "qa's check is not on claude's path, an ok check is no finding"
    );
    assert!(p.disagreements().is_empty(), "{:?}", p.disagreements());
    let p = pair(&before, "qa", "qms", None);
    assert_eq!(p.findings.len(), 1);
    assert!(
        p.disagreements().is_empty(),
        "not configured, and qa's warning"
    );

    let after = doc(Some(serde_json::json!([
        {"agent": "claude", "server": "git", "scope": "user", "expected": "failed",
         "because": "server.mcp[git]", "cause": "timeout"},
        {"agent": "qa", "server": "qms", "scope": "none", "expected": "connected"},
        {"agent": "qa", "server": "git", "scope": "project", "expected": "unknown"}
    ])));
    assert!(pair(&after, "claude", "git", Some(failed))
        .disagreements()
        .is_empty());
    assert_eq!(
        pair(&after, "qa", "qms", None).disagreements(),
        ["claude_code expects connected, Claude Code says not-configured"]
    );
    // With every check run, "unknown" is a miss.
    assert_eq!(
        pair(&after, "qa", "git", Some(failed)).disagreements(),
        ["claude_code expects unknown, Claude Code says failed"]
    );
    assert_eq!(
        pair(&after, "claude", "qms", None).disagreements(),
        [
            "Claude Code says not-configured, pd-doctor finds nothing on the path",
            "claude_code has no entry for this pair"
        ]
    );
}

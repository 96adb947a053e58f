//! The command line of the contract: flags, subcommands, exit codes.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, bail, Context as _};
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use comfy_table::{presets, Table};

use crate::catalogue::Catalogue;
use crate::fixes::{self, flow::Narrator};
use crate::printable;
use crate::project::{self, Project};
use crate::report::{self, Report};
use crate::run::Runner;

pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Human,
    Json,
    Junit,
    Github,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

/// Finds why a Pipe Dream agent container says "MCP failed", explains it, and fixes what
/// is safe to fix.
#[derive(Debug, Parser)]
#[command(name = "pd-doctor", version, about, max_term_width = 100)]
pub struct Cli {
    /// The Pipe Dream tree (default: the nearest folder above with docker/ and .claude/)
    #[arg(long, global = true, value_name = "PATH")]
    pub root: Option<PathBuf>,
    /// Only these agents (repeatable)
    #[arg(long = "agent", value_name = "NAME")]
    pub agents: Vec<String>,
    /// Only checks whose instance id matches (repeatable; `*` and `?`)
    #[arg(long, value_name = "GLOB")]
    pub only: Vec<String>,
    /// Leave out checks whose instance id matches (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub skip: Vec<String>,
    /// Per-probe deadline, e.g. 2s, 500ms
    #[arg(long, default_value = "2s", value_parser = parse_duration, value_name = "DURATION", global = true)]
    pub timeout: Duration,
    /// The run's deadline when `--timeout` was given: that long after pd-doctor began.
    #[arg(skip)]
    pub deadline: Option<tokio::time::Instant>,
    /// Same as --format json
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    /// Output format; json, junit and github (GitHub Actions annotations) print the
    /// report alone on stdout
    #[arg(long, value_enum, default_value = "human")]
    pub format: Format,
    /// Colour: auto is on for a terminal; NO_COLOR, CLICOLOR=0 and TERM=dumb turn it off,
    /// CLICOLOR_FORCE on
    #[arg(long, value_enum, default_value = "auto", global = true)]
    pub color: ColorChoice,
    /// Show evidence for passing checks too; -vv also writes a debug trace to stderr
    /// (as PD_DOCTOR_LOG=debug does)
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Repair what is safe to repair, then check again
    #[arg(long)]
    pub fix: bool,
    /// With --fix: act without asking
    #[arg(long, requires = "fix")]
    pub yes: bool,
    /// With --fix: print the plan, change nothing
    #[arg(long, requires = "fix")]
    pub dry_run: bool,
    /// With --fix: also remove a running container, and restart running agent containers
    /// after a repair their entrypoint must act on (their Claude session ends)
    #[arg(long, requires = "fix")]
    pub force: bool,
    /// Also probe how servers treat older clients: a POST of initialize that does not
    /// accept both JSON and SSE. Leaves one 406 in a strict server's log
    #[arg(long)]
    pub compat: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The catalogue: every check id, title, section, fixable?
    List,
    /// What a check looks at, why, the manual fix and what --fix does
    Explain {
        #[arg(value_name = "CHECK_ID")]
        id: String,
    },
    /// Chapter 8.5 clean slate: remove agent containers, clear markers
    Reset {
        /// Act without asking
        #[arg(long)]
        yes: bool,
        /// Print what would be done, change nothing
        #[arg(long)]
        dry_run: bool,
        /// Also stop the MCP servers named by PID files, once verified to be them
        #[arg(long)]
        stop_servers: bool,
        /// Also remove running agent containers
        #[arg(long)]
        force: bool,
    },
    /// Shell completions
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// The manual page pd-doctor.1 (roff), from the same definitions as --help
    Man {
        /// Write DIR/pd-doctor.1 instead of printing it
        #[arg(long, value_name = "DIR")]
        output: Option<PathBuf>,
    },
}

/// The range `--timeout` accepts: long enough for a handshake on a busy machine, short
/// enough that a run still ends while someone waits for it.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(600);

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = match s.parse::<f64>() {
        // Checked before converting: `Duration::from_secs_f64(1e20)` panics.
        Ok(secs) if secs.is_finite() && (0.0..=86_400.0).contains(&secs) => {
            Duration::from_secs_f64(secs)
        }
        Ok(_) => return Err(out_of_range()),
        _ => humantime::parse_duration(s).map_err(|e| e.to_string())?,
    };
    if !TIMEOUT_RANGE.contains(&d) {
        return Err(out_of_range());
    }
    Ok(d)
}

fn out_of_range() -> String {
    "the timeout must be between 100ms and 10m (e.g. 2s, 500ms)".into()
}

pub fn main() -> i32 {
    let began = tokio::time::Instant::now();
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let cli = match parsed {
        Ok((cli, matches)) => {
            let given = |m: &clap::ArgMatches| {
                m.value_source("timeout") == Some(clap::parser::ValueSource::CommandLine)
            };
            let timeout_given =
                given(&matches) || matches.subcommand().is_some_and(|(_, sub)| given(sub));
            Cli {
                deadline: timeout_given.then(|| began + cli.timeout),
                ..cli
            }
        }
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { EXIT_USAGE } else { EXIT_OK };
        }
    };
    crate::debuglog::init(cli.verbose);
    match run(cli) {
        Ok(code) => code,
        // The whole chain, "what failed: why", as one line per cause it holds.
        Err(e) => {
            eprintln!("pd-doctor: {}", printable::block(&format!("{e:#}")));
            EXIT_USAGE
        }
    }
}

/// The binary's edge: every error that ends a run comes here, with its context, and
/// leaves as exit code 2.
fn run(cli: Cli) -> anyhow::Result<i32> {
    let color = colour_on_stdout(cli.color);
    match &cli.command {
        Some(Command::List) => list(&catalogue_for(&cli)?),
        Some(Command::Explain { id }) => explain(&catalogue_for(&cli)?, id),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                *shell,
                &mut Cli::command(),
                "pd-doctor",
                &mut std::io::stdout(),
            );
            Ok(EXIT_OK)
        }
        Some(Command::Man { output }) => man(output.as_deref()),
        Some(Command::Reset {
            yes,
            dry_run,
            stop_servers,
            force,
        }) => {
            let opts = fixes::flow::Options {
                yes: *yes,
                dry_run: *dry_run,
                force: *force,
            };
            reset(&cli, *stop_servers, opts)
        }
        None => check(&cli, color),
    }
}

/// `--color`, and for `auto` the conventions (anstyle-query reads them): NO_COLOR
/// (no-color.org) turns colour off, then CLICOLOR_FORCE (other than `0`) on, CLICOLOR=0
/// and TERM=dumb off; otherwise colour when stdout is a terminal.
fn colour_on_stdout(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            let forced = anstyle_query::clicolor_force()
                && std::env::var_os("CLICOLOR_FORCE").is_some_and(|v| v != "0");
            // An unset TERM is not `dumb`: colour on a terminal, as before.
            let dumb = std::env::var_os("TERM").is_some() && !anstyle_query::term_supports_color();
            if anstyle_query::no_color() {
                false
            } else if forced {
                true
            } else if anstyle_query::clicolor() == Some(false) || dumb {
                false
            } else {
                std::io::stdout().is_terminal()
            }
        }
    }
}

/// `pd-doctor man`: the roff page on stdout, or as `DIR/pd-doctor.1`.
fn man(output: Option<&std::path::Path>) -> anyhow::Result<i32> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("cannot render the manual page")?;
    match output {
        None => {
            use std::io::Write;
            std::io::stdout()
                .write_all(&page)
                .context("cannot write the manual page")?;
        }
        Some(dir) => {
            let path = dir.join("pd-doctor.1");
            std::fs::write(&path, &page)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    Ok(EXIT_OK)
}

fn find_root(cli: &Cli) -> anyhow::Result<PathBuf> {
    if let Some(root) = &cli.root {
        return Ok(root.clone());
    }
    let cwd = std::env::current_dir().context("cannot read the working directory")?;
    project::discover_root(&cwd).ok_or_else(|| {
        anyhow!("no Pipe Dream project here: no folder above {} has .claude/ and one of docker/, agent-hub/docker/ or QMS/ (use --root PATH)", cwd.display())
    })
}

/// The catalogue with the project's own checks when there is a project, else built-in.
fn catalogue_for(cli: &Cli) -> anyhow::Result<Catalogue> {
    match find_root(cli) {
        Ok(root) => Ok(Catalogue::load(&root)?),
        Err(_) => Ok(Catalogue::builtin()),
    }
}

fn list(catalogue: &Catalogue) -> anyhow::Result<i32> {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED.with_rounded_corners());
    t.set_header(vec!["id", "section", "per", "fixable", "title"]);
    for c in &catalogue.checks {
        t.add_row(vec![
            printable::line(&c.id).into_owned(),
            c.section.clone(),
            c.per.as_str().to_string(),
            if c.fix.is_some() { "yes" } else { "" }.to_string(),
            printable::line(&c.title).into_owned(),
        ]);
    }
    println!("{t}");
    Ok(EXIT_OK)
}

fn explain(catalogue: &Catalogue, id: &str) -> anyhow::Result<i32> {
    let base = id.split('[').next().unwrap_or(id);
    let Some(c) = catalogue.get(base) else {
        bail!("no check {id:?}; `pd-doctor list` shows them all");
    };
    // A project's own checks are text from the tree: printable like any outside text.
    println!("{} — {}", printable::line(&c.id), printable::line(&c.title));
    println!(
        "section {} ({}), runs per {}",
        c.section,
        catalogue.section_title(&c.section),
        c.per.as_str()
    );
    for need in &c.needs {
        println!("needs {}", need.check);
    }
    println!();
    println!("{}", printable::block(c.explain.trim_end()));
    Ok(EXIT_OK)
}

/// Loads the project and the catalogue into a runner.
fn prepare(cli: &Cli) -> anyhow::Result<Runner> {
    let root = find_root(cli)?;
    // Asked only of a tree that has both layouts' folders.
    let mounted = || {
        let mount = format!("{}/.mcp.json", project::Layout::default().project_mount);
        new_runtime()
            .map(|rt| rt.block_on(crate::facts::docker::mounted_at(&mount, cli.timeout)))
            .unwrap_or_default()
    };
    let project = Arc::new(Project::load_with(&root, &cli.agents, &mounted)?);
    crate::debuglog::watch(&project.secrets);
    let catalogue = Catalogue::load(&project.root)?;
    Ok(Runner {
        project,
        catalogue,
        timeout: cli.timeout,
        deadline: cli.deadline,
        only: cli.only.clone(),
        skip: cli.skip.clone(),
        agents: cli.agents.clone(),
        compat: cli.compat,
    })
}

fn narrator<'a>(to_stdout: bool, project: &'a Project) -> Narrator<'a> {
    let out: Box<dyn std::io::Write> = if to_stdout {
        Box::new(std::io::stdout())
    } else {
        Box::new(std::io::stderr())
    };
    Narrator {
        out,
        scrub: Box::new(move |line| printable::line(&project.secrets.scrub(line)).into_owned()),
    }
}

fn new_runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(crate::engine::MAX_PROBE_THREADS)
        .build()
        .context("cannot start")
}

fn check(cli: &Cli, color: bool) -> anyhow::Result<i32> {
    let format = if cli.json { Format::Json } else { cli.format };
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let clock = Instant::now();
    // A live line on stderr when it is a terminal: not while --fix talks there or the
    // trace writes there, and for a report meant for programs only when stdout is not
    // that terminal too.
    let live = (std::io::stderr().is_terminal()
        && !cli.fix
        && !crate::debuglog::enabled()
        && (format == Format::Human || !std::io::stdout().is_terminal()))
    .then(crate::progress::Live::start);
    let runtime = new_runtime()?;
    let mut runner = prepare(cli)?;
    let mut results = runtime.block_on(runner.first_diagnosis());
    let project = runner.project.clone();
    // Cleared before anything else is printed.
    if let Some(live) = live {
        live.finish();
    }
    if cli.fix {
        let opts = fixes::flow::Options {
            yes: cli.yes,
            dry_run: cli.dry_run,
            force: cli.force,
        };
        let mut say = narrator(format == Format::Human, &project);
        match runtime.block_on(fixes::flow::fix(&runner, results, opts, &mut say)) {
            Ok(fixed) => results = fixed,
            Err(fixes::flow::Refusal::NoConsent) => {
                bail!("--fix changes files and containers: without a terminal to ask on, say --yes (or --dry-run to see the plan); nothing was changed");
            }
        }
        println!();
    }
    // Probes that hang past their deadline are abandoned, not awaited.
    runtime.shutdown_background();
    let root_causes = crate::engine::relate(&runner.catalogue, &mut results);
    let mut report = Report {
        root: project.root.display().to_string(),
        layout: report::LayoutInfo {
            name: project.layout.name.as_str().into(),
            docker_dir: project.layout.docker_dir.clone(),
            how: project.layout.how.clone(),
        },
        started_at,
        duration_ms: clock.elapsed().as_millis() as u64,
        claude_code: report::verdict::judge(&results),
        results,
        root_causes,
    };
    report.scrub(&project.secrets);
    let text = match format {
        Format::Json => report::json::render(&report),
        Format::Junit => report::junit::render(&report, &runner.catalogue),
        Format::Github => report::github::render(&report),
        Format::Human => {
            let header = header(&project);
            report::human::render(
                &report,
                &runner.catalogue,
                &header,
                &report::human::Options {
                    verbose: cli.verbose > 0,
                    color,
                },
            )
        }
    };
    // Every outside text in `report` was made printable by `scrub`; the header too.
    print!("{}", project.secrets.scrub(&text));
    Ok(if report.failed() {
        EXIT_FAILED
    } else {
        EXIT_OK
    })
}

fn reset(cli: &Cli, stop_servers: bool, opts: fixes::flow::Options) -> anyhow::Result<i32> {
    let runtime = new_runtime()?;
    let runner = prepare(cli)?;
    let project = runner.project.clone();
    let mut say = narrator(true, &project);
    let outcome = runtime.block_on(fixes::flow::reset(&runner, stop_servers, opts, &mut say));
    runtime.shutdown_background();
    match outcome {
        Ok(true) => Ok(EXIT_OK),
        Ok(false) => Ok(EXIT_FAILED),
        Err(fixes::flow::Refusal::NoConsent) => {
            bail!("reset removes containers and files: without a terminal to ask on, say --yes (or --dry-run); nothing was changed")
        }
    }
}

fn header(project: &Project) -> String {
    let servers: Vec<String> = project
        .servers
        .iter()
        .map(|s| format!("{} :{}", s.name, s.port))
        .collect();
    let agents: Vec<&str> = project.agents.iter().map(|a| a.name.as_str()).collect();
    let text = format!(
        "pd-doctor {} · {}\nlayout: {} ({})\nservers: {} · agents: {}",
        env!("CARGO_PKG_VERSION"),
        project.root.display(),
        project.layout.name.as_str(),
        project.layout.how,
        servers.join(", "),
        if agents.is_empty() {
            "none found".into()
        } else {
            agents.join(", ")
        }
    );
    printable::block(&text).into_owned()
}

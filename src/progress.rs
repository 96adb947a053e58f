//! A live line on a terminal while checks run: "12/40 checks · waiting for git :8001,
//! 1.2 s". The engine tells [`track`] about each check instance it starts; the guard it
//! gets back counts the instance done when dropped (panics and cancellations included).
//! [`Live`] draws with indicatif on stderr once the run has taken [`DELAY`], and clears
//! the line when it is finished, before any report is printed. Without a `Live`, the
//! engine's calls cost a lock and nothing else.

use std::fmt::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::model::Subject;
use crate::printable;
use crate::project::Project;

/// A run shorter than this shows nothing.
pub const DELAY: Duration = Duration::from_millis(200);
const TICK: Duration = Duration::from_millis(100);

#[derive(Default)]
struct State {
    next: u64,
    total: usize,
    done: usize,
    /// Instances started and not done: key, what they wait for, since when.
    running: Vec<(u64, String, Instant)>,
}

impl State {
    fn line(&self, now: Instant) -> String {
        let mut line = format!("{}/{} checks", self.done, self.total);
        if let Some((_, what, since)) = self.running.first() {
            let secs = now.saturating_duration_since(*since).as_secs_f64();
            let _ = write!(line, " · waiting for {what}, {secs:.1} s");
            if self.running.len() > 1 {
                let _ = write!(line, " (and {} more)", self.running.len() - 1);
            }
        }
        line
    }
}

/// The state of the run being shown; `None` when nothing is shown.
static STATE: Mutex<Option<State>> = Mutex::new(None);

fn with_state<T>(f: impl FnOnce(&mut State) -> T) -> Option<T> {
    STATE.lock().ok()?.as_mut().map(f)
}

/// What an instance waits for, as a user names it: `git :8001`, `qa → git :8001`, or
/// its id.
fn label(id: &str, subject: &Subject, project: &Project) -> String {
    let server = subject
        .server
        .as_deref()
        .and_then(|s| project.server(s))
        .map(|s| format!("{} :{}", s.name, s.port));
    let text = match (subject.agent.as_deref(), server) {
        (Some(agent), Some(server)) => format!("{agent} → {server}"),
        (None, Some(server)) => server,
        _ => id.to_string(),
    };
    printable::line(&text).into_owned()
}

/// Counts one instance until dropped.
pub struct Tracked(Option<u64>);

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(key) = self.0 {
            with_state(|s| {
                s.done += 1;
                s.running.retain(|(k, _, _)| *k != key);
            });
        }
    }
}

/// The engine's hook: one check instance starts (it waits for its prerequisites, then
/// probes).
pub fn track(id: &str, subject: &Subject, project: &Project) -> Tracked {
    Tracked(with_state(|s| {
        let key = s.next;
        s.next += 1;
        s.total += 1;
        s.running
            .push((key, label(id, subject, project), Instant::now()));
        key
    }))
}

/// The live line of one run.
pub struct Live {
    stop: Arc<AtomicBool>,
    drawer: Option<std::thread::JoinHandle<()>>,
}

impl Live {
    /// Starts counting now; draws on stderr from [`DELAY`] on. Call only when stderr is
    /// a terminal.
    pub fn start() -> Live {
        if let Ok(mut state) = STATE.lock() {
            *state = Some(State::default());
        }
        let stop = Arc::new(AtomicBool::new(false));
        let halt = stop.clone();
        let drawer = std::thread::spawn(move || {
            std::thread::park_timeout(DELAY);
            if halt.load(Ordering::Acquire) {
                return;
            }
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
                bar.set_style(style);
            }
            while !halt.load(Ordering::Acquire) {
                if let Some(line) = with_state(|s| s.line(Instant::now())) {
                    bar.set_message(line);
                }
                bar.tick();
                std::thread::park_timeout(TICK);
            }
            bar.finish_and_clear();
        });
        Live {
            stop,
            drawer: Some(drawer),
        }
    }

    /// Clears the line (if drawn) and stops counting; returns once stderr is clean.
    pub fn finish(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(drawer) = self.drawer.take() {
            drawer.thread().unpark();
            let _ = drawer.join();
        }
        if let Ok(mut state) = STATE.lock() {
            *state = None;
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop_now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_counts_and_names_the_oldest_wait() {
        let now = Instant::now();
        let mut s = State {
            total: 40,
            done: 12,
            ..State::default()
        };
        assert_eq!(s.line(now), "12/40 checks");
        s.running.push((1, "git :8001".into(), now));
        s.running.push((2, "qa → qms :8000".into(), now));
        let later = now + Duration::from_millis(1230);
        assert_eq!(
            s.line(later),
            "12/40 checks · waiting for git :8001, 1.2 s (and 1 more)"
        );
    }
}

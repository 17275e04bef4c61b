//! Progress of a long run on stderr: a bar redrawn in place on a terminal, a line every few
//! seconds otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// How often a line is written when stderr is not a terminal.
const LINE_EVERY: Duration = Duration::from_secs(5);
/// How often the bar is redrawn on a terminal.
const BAR_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug)]
pub struct Progress {
    label: String,
    total: u64,
    started: Instant,
    shown: Option<Instant>,
    tty: bool,
}

impl Progress {
    /// `total`: the events expected (an estimate: more may arrive while it runs).
    pub fn new(label: &str, total: u64) -> Self {
        Self {
            label: label.to_owned(),
            total,
            started: Instant::now(),
            shown: None,
            tty: std::io::stderr().is_terminal(),
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Reports `done` events; shown at most every so often.
    pub fn update(&mut self, done: u64) {
        let every = if self.tty { BAR_EVERY } else { LINE_EVERY };
        if self.shown.is_some_and(|at| at.elapsed() < every) {
            return;
        }
        self.shown = Some(Instant::now());
        let line = self.line(done);
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            write!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }

    /// The final line (and a newline after the bar).
    pub fn finish(&mut self, done: u64) {
        let line = self.line(done);
        let mut err = std::io::stderr().lock();
        let _ = if self.tty {
            writeln!(err, "\r{line}\x1b[K")
        } else {
            writeln!(err, "{line}")
        };
    }

    fn line(&self, done: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let total = self.total.max(done);
        let left = total - done;
        let eta = if rate > 0.0 {
            format!("ETA {}", human_duration(left as f64 / rate))
        } else {
            "ETA ?".to_owned()
        };
        let share = if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        };
        let figures = format!(
            "{done}/{total} events ({:.0}%), {:.0} events/s, {eta}",
            share * 100.0,
            rate
        );
        if self.tty {
            const WIDTH: usize = 30;
            let filled = ((share * WIDTH as f64) as usize).min(WIDTH);
            format!(
                "{} [{}{}] {figures}",
                self.label,
                "#".repeat(filled),
                "-".repeat(WIDTH - filled)
            )
        } else {
            format!("{}: {figures}", self.label)
        }
    }
}

pub fn human_duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

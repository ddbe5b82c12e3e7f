//! Progress for long work: an indicatif bar on a terminal, and a plain line
//! every few seconds anywhere else (a CI log, a pipe, a file), where a bar's
//! redraws would be lost or would fill the log with escape codes.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

/// How often a plain line is printed when stderr is not a terminal, unless
/// `DLFS_PROGRESS_SECS` says otherwise.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// How often the bar is redrawn: a few times a second is enough for the eye,
/// and the message (a loss, say) is only formatted then.
const DRAW_EVERY: Duration = Duration::from_millis(100);

/// What the positions count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Things: iterations, loss evaluations. `what` names them.
    Count,
    /// Bytes, shown as KiB and MiB.
    Bytes,
}

/// A bar on a terminal; plain lines on stderr elsewhere.
///
/// All methods take `&self`, so a `Progress` can be ticked from another
/// thread (gradcheck's watcher) or from behind an `Arc` (downloads).
pub struct Progress {
    bar: ProgressBar,
    /// `Some` when stderr is not a terminal.
    plain: Option<Plain>,
    last_draw: Mutex<Option<Instant>>,
    /// The message last set, for plain lines.
    message: Mutex<String>,
}

struct Plain {
    label: String,
    what: String,
    unit: Unit,
    len: Option<u64>,
    every: Duration,
    start: Instant,
    last_line: Mutex<Instant>,
}

impl Progress {
    /// A bar for `len` steps (a spinner when the length is unknown).
    ///
    /// `label` starts the plain lines (`"numerical gradient"`); `what` names
    /// the steps (`"loss evaluations"`); `template` is the bar's indicatif
    /// template.
    pub fn new(label: &str, what: &str, unit: Unit, len: Option<u64>, template: &str) -> Self {
        let bar = match len {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::new_spinner(),
        };
        let style = ProgressStyle::with_template(template).unwrap_or_else(|e| {
            panic!("progress template {template:?} is invalid: {e}");
        });
        bar.set_style(style);
        let plain = (!std::io::IsTerminal::is_terminal(&std::io::stderr())).then(|| Plain {
            label: label.to_owned(),
            what: what.to_owned(),
            unit,
            len,
            every: plain_every(),
            start: Instant::now(),
            last_line: Mutex::new(Instant::now()),
        });
        Self {
            bar,
            plain,
            last_draw: Mutex::new(None),
            message: Mutex::new(String::new()),
        }
    }

    /// Whether plain lines are printed instead of a bar.
    pub fn is_plain(&self) -> bool {
        self.plain.is_some()
    }

    /// Moves to `pos` and sets the message to `message()`, which is called
    /// only when something is drawn or printed, at most a few times a second.
    pub fn tick(&self, pos: u64, message: impl FnOnce() -> String) {
        self.update(pos, Some(message));
    }

    /// Moves to `pos`, keeping the message.
    pub fn advance(&self, pos: u64) {
        self.update(pos, None::<fn() -> String>);
    }

    /// Sets the message shown after the bar (and in plain lines).
    pub fn set_message(&self, message: &str) {
        message.clone_into(&mut lock(&self.message));
        self.bar.set_message(message.to_owned());
    }

    fn update(&self, pos: u64, message: Option<impl FnOnce() -> String>) {
        let now = Instant::now();
        // A hidden bar (plain lines) needs no redraws.
        let draw = self.plain.is_none() && {
            let mut last = lock(&self.last_draw);
            let due = last.is_none_or(|t| now.duration_since(t) >= DRAW_EVERY);
            if due {
                *last = Some(now);
            }
            due
        };
        let line = self.plain.as_ref().is_some_and(|p| {
            let mut last = lock(&p.last_line);
            let due = now.duration_since(*last) >= p.every;
            if due {
                *last = now;
            }
            due
        });
        if !draw && !line {
            return;
        }
        if let Some(message) = message {
            self.set_message(&message());
        }
        if draw {
            self.bar.set_position(pos);
        }
        if line && let Some(p) = &self.plain {
            eprintln!("{}", p.line(pos, &lock(&self.message), now));
        }
    }

    /// Prints `line` to stdout with the bar out of the way.
    pub fn println_stdout(&self, line: &str) {
        self.bar.suspend(|| println!("{line}"));
    }

    /// Prints `line` to stderr with the bar out of the way.
    pub fn println(&self, line: &str) {
        if self.bar.is_hidden() {
            eprintln!("{line}");
        } else {
            self.bar.println(line);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Plain {
    fn line(&self, pos: u64, msg: &str, now: Instant) -> String {
        let secs = now.duration_since(self.start).as_secs_f64();
        let amount = |n: u64| match self.unit {
            Unit::Count => n.to_string(),
            Unit::Bytes => HumanBytes(n).to_string(),
        };
        let mut line = format!("{}: {}", self.label, amount(pos));
        if let Some(len) = self.len {
            line += &format!("/{}", amount(len));
        }
        if self.unit == Unit::Count && !self.what.is_empty() {
            line += &format!(" {}", self.what);
        }
        if let Some(len) = self.len.filter(|&l| l > 0) {
            line += &format!(" ({:.0} %)", 100.0 * pos as f64 / len as f64);
        }
        if !msg.is_empty() {
            line += &format!(" | {msg}");
        }
        if secs > 0.0 {
            let rate = pos as f64 / secs;
            line += &match self.unit {
                Unit::Count => format!(" | {rate:.0}/s"),
                Unit::Bytes => format!(" | {}/s", HumanBytes(rate as u64)),
            };
        }
        line + &format!(" | {secs:.0} s")
    }
}

/// `DLFS_PROGRESS_SECS` (seconds, may be fractional; 0 prints a line at
/// every update), else [`PLAIN_EVERY`]. A value that is not a usable number
/// of seconds is reported once and ignored.
fn plain_every() -> Duration {
    let Some(value) = std::env::var_os("DLFS_PROGRESS_SECS") else {
        return PLAIN_EVERY;
    };
    match parse_secs(&value.to_string_lossy()) {
        Some(every) => every,
        None => {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!(
                    "warning: DLFS_PROGRESS_SECS={value:?} is not a number of seconds \
                     (e.g. 5, 0.5, or 0 for every update); printing progress every {} s",
                    PLAIN_EVERY.as_secs()
                );
            });
            PLAIN_EVERY
        }
    }
}

/// Seconds as a `Duration`; `None` for text, negative, NaN, infinite or too
/// large values (all of which `try_from_secs_f64` refuses).
fn parse_secs(s: &str) -> Option<Duration> {
    Duration::try_from_secs_f64(s.trim().parse().ok()?).ok()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(unit: Unit, len: Option<u64>) -> Plain {
        Plain {
            label: "numerical gradient".into(),
            what: "loss evaluations".into(),
            unit,
            len,
            every: PLAIN_EVERY,
            start: Instant::now(),
            last_line: Mutex::new(Instant::now()),
        }
    }

    #[test]
    fn a_plain_line_says_how_far_how_fast_and_how_long() {
        let p = plain(Unit::Count, Some(79_520));
        let at = p.start + Duration::from_secs(4);
        assert_eq!(
            p.line(19_880, "", at),
            "numerical gradient: 19880/79520 loss evaluations (25 %) | 4970/s | 4 s"
        );
        assert_eq!(
            p.line(100, "loss 2.2991", at),
            "numerical gradient: 100/79520 loss evaluations (0 %) | loss 2.2991 | 25/s | 4 s"
        );
    }

    #[test]
    fn the_interval_is_a_non_negative_number_of_seconds() {
        assert_eq!(parse_secs("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_secs(" 0 "), Some(Duration::ZERO));
        assert_eq!(parse_secs("-0"), Some(Duration::ZERO));
        assert_eq!(parse_secs("1e3"), Some(Duration::from_secs(1000)));
        for bad in ["", "-1", "nan", "inf", "1e20", "5s", "garbage"] {
            assert_eq!(parse_secs(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn bytes_are_shown_in_binary_units_and_an_unknown_length_is_left_out() {
        let p = plain(Unit::Bytes, None);
        let at = p.start + Duration::from_secs(2);
        assert_eq!(
            p.line(3 * 1024 * 1024, "train-images-idx3-ubyte.gz", at),
            "numerical gradient: 3.00 MiB | train-images-idx3-ubyte.gz | 1.50 MiB/s | 2 s"
        );
    }
}

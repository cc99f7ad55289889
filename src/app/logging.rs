//! A log writer that never makes the logging thread wait for the
//! terminal or pipe: lines are appended to a shared buffer and a thread
//! of its own writes the buffer out, many lines per system call. Lines
//! are never dropped: past [`MAX_PENDING`] bytes, loggers wait.
//!
//! [`init_logging`] installs it as the `tracing` subscriber's writer, in
//! the `--log-format` asked for.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use tracing_subscriber::fmt::MakeWriter;

use crate::{LogFormat, LogLevel};

/// Logs go to stderr through [`LogSink`]: a burst's thousands of
/// `dispatched` lines cost the run loop a buffer append each, not a write
/// system call. Dropping the returned guard writes out what is buffered.
///
/// The filter: `--loglevel` if given, else `METRONOME_LOG` (a tracing
/// filter), else `info`; see [`filter_for`]. Colours only on a terminal
/// (and never with `NO_COLOR` set).
pub fn init_logging(format: LogFormat, level: Option<LogLevel>) -> LogGuard {
    let env = std::env::var("METRONOME_LOG").ok();
    let filter = tracing_subscriber::EnvFilter::try_new(filter_for(level, env.as_deref()))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter_for(None, None)));
    let (sink, guard) = LogSink::start(Box::new(std::io::stderr()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours())
        .with_writer(sink);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

/// ANSI colours: only when stderr is a terminal and `NO_COLOR` is unset.
fn colours() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The tracing filter: `level` (from `-l/--loglevel`) for metronome's own
/// lines with every dependency (sqlx, lapin, hyper, tower_http, …) at
/// `warn` at most; else `env` (`METRONOME_LOG`, a full tracing filter, as
/// given) when set; else `info` the same way.
pub fn filter_for(level: Option<LogLevel>, env: Option<&str>) -> String {
    let level = match (level, env.filter(|e| !e.trim().is_empty())) {
        (Some(l), _) => l,
        (None, Some(env)) => return env.to_string(),
        (None, None) => LogLevel::Info,
    };
    let own = level.directive();
    match level {
        LogLevel::Error | LogLevel::Critical => own.to_string(),
        _ => format!("warn,metronome={own}"),
    }
}

/// Buffered bytes beyond which a logger waits for the writer thread.
pub const MAX_PENDING: usize = 8 << 20;

#[derive(Default)]
struct Pending {
    data: Vec<u8>,
    /// The writer thread sleeps, waiting for data.
    idle: bool,
    /// Loggers wait for the buffer to drain.
    full: usize,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    /// Data arrived, or closing.
    ready: Condvar,
    /// The buffer was taken.
    drained: Condvar,
}

/// The `MakeWriter` for tracing-subscriber. Cheap to clone.
#[derive(Clone)]
pub struct LogSink(Arc<Shared>);

/// Writes out what is buffered and stops the thread when dropped;
/// later lines go straight to the output's fallback (stderr).
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogSink {
    /// Starts the writer thread for `out`.
    pub fn start(mut out: Box<dyn Write + Send>) -> (LogSink, LogGuard) {
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || {
                let mut batch = Vec::new();
                loop {
                    let closed = {
                        let mut p = s.pending.lock().unwrap_or_else(|e| e.into_inner());
                        while p.data.is_empty() && !p.closed {
                            p.idle = true;
                            p = s.ready.wait(p).unwrap_or_else(|e| e.into_inner());
                        }
                        p.idle = false;
                        std::mem::swap(&mut p.data, &mut batch);
                        if p.full > 0 {
                            s.drained.notify_all();
                        }
                        p.closed && batch.is_empty()
                    };
                    if closed {
                        let _ = out.flush();
                        return;
                    }
                    // Nowhere to report a failed log write; drop it.
                    let _ = out.write_all(&batch);
                    let _ = out.flush();
                    batch.clear();
                }
            })
            .expect("spawn the log writer thread");
        (
            LogSink(shared.clone()),
            LogGuard {
                shared,
                thread: Some(thread),
            },
        )
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        {
            let mut p = self
                .shared
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            p.closed = true;
            self.shared.ready.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One log line being written.
pub struct Line<'a>(&'a Shared);

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut p = self.0.pending.lock().unwrap_or_else(|e| e.into_inner());
        if p.closed {
            drop(p);
            return std::io::stderr().write(buf);
        }
        while p.data.len() >= MAX_PENDING && !p.closed {
            p.full += 1;
            p = self.0.drained.wait(p).unwrap_or_else(|e| e.into_inner());
            p.full -= 1;
        }
        p.data.extend_from_slice(buf);
        if p.idle {
            p.idle = false;
            self.0.ready.notify_one();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogSink {
    type Writer = Line<'a>;
    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that keeps what it is given.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<u8>>>);

    impl Write for Kept {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// `-l` wins over METRONOME_LOG and keeps dependencies at warn;
    /// METRONOME_LOG is used as given; the default is info with
    /// dependencies at warn.
    #[test]
    fn the_filter_follows_loglevel_then_the_environment() {
        assert_eq!(filter_for(None, None), "warn,metronome=info");
        assert_eq!(filter_for(None, Some("  ")), "warn,metronome=info");
        assert_eq!(filter_for(None, Some("debug,sqlx=info")), "debug,sqlx=info");
        assert_eq!(
            filter_for(Some(LogLevel::Debug), Some("trace")),
            "warn,metronome=debug"
        );
        assert_eq!(
            filter_for(Some(LogLevel::Warning), None),
            "warn,metronome=warn"
        );
        assert_eq!(filter_for(Some(LogLevel::Critical), None), "error");
        for l in [LogLevel::Debug, LogLevel::Info, LogLevel::Error] {
            assert!(tracing_subscriber::EnvFilter::try_new(filter_for(Some(l), None)).is_ok());
        }
    }

    /// Lines from several threads, more than the buffer holds, all
    /// arrive whole and in each thread's order by the time the guard
    /// is dropped.
    #[test]
    fn every_line_arrives_whole_and_in_order() {
        let kept = Kept::default();
        let (sink, guard) = LogSink::start(Box::new(kept.clone()));
        let pad = "x".repeat(200);
        let per_thread = (MAX_PENDING / 200) + 1000;
        std::thread::scope(|s| {
            for t in 0..3 {
                let (sink, pad) = (sink.clone(), &pad);
                s.spawn(move || {
                    for i in 0..per_thread {
                        let line = format!("{t} {i} {pad}\n");
                        sink.make_writer().write_all(line.as_bytes()).unwrap();
                    }
                });
            }
        });
        drop(guard);
        let text = String::from_utf8(kept.0.lock().unwrap().clone()).unwrap();
        let mut next = [0usize; 3];
        for l in text.lines() {
            let mut f = l.split(' ');
            let t: usize = f.next().unwrap().parse().unwrap();
            let i: usize = f.next().unwrap().parse().unwrap();
            assert_eq!(f.next(), Some(pad.as_str()), "a line was cut: {l:.40}");
            assert_eq!(i, next[t], "thread {t} out of order");
            next[t] += 1;
        }
        assert_eq!(next, [per_thread; 3]);
    }
}

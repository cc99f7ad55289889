//! The subcommands that read schedule files without running them:
//! `metronome check` (validate) and `metronome next` (list upcoming runs),
//! and the default zone (`--timezone`) that `run` shares with them.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use jiff::tz::TimeZone;

use metronome::engine::{Run, upcoming};
use metronome::entry::Entry;
use metronome::ports::clock::{Clock, SystemClock};
use metronome::source::yaml::{self, DefaultZone};

use crate::{CheckArgs, NextArgs, ZoneArg};

/// `--timezone`, else `CELERY_TIMEZONE`: the zone of files that set none.
pub fn default_zone(z: &ZoneArg) -> anyhow::Result<DefaultZone> {
    let name = z
        .timezone
        .clone()
        .or_else(|| std::env::var("CELERY_TIMEZONE").ok())
        .filter(|s| !s.is_empty());
    match name {
        None => Ok(None),
        Some(n) => {
            let tz = TimeZone::get(&n).with_context(|| {
                format!("unknown time zone `{n}` in --timezone/CELERY_TIMEZONE")
            })?;
            Ok(Some((n, tz)))
        }
    }
}

/// `metronome check`: a count of schedules by kind, or every error; then
/// the warnings (see [`yaml::warnings`]).
pub fn check(a: &CheckArgs) -> anyhow::Result<ExitCode> {
    let zone = default_zone(&a.zone)?;
    let loaded = yaml::expand_paths(&a.files)
        .and_then(|files| Ok((yaml::load_files_with_routes(&files, &zone)?, files)));
    match loaded {
        Ok(((entries, routes), files)) => {
            let mut kinds = std::collections::BTreeMap::new();
            for e in &entries {
                *kinds.entry(e.schedule.kind()).or_insert(0) += 1;
            }
            let detail: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
            println!(
                "ok: {} schedule{} in {} file{} ({})",
                entries.len(),
                plural(entries.len()),
                files.len(),
                plural(files.len()),
                detail.join(", ")
            );
            let mut warnings = yaml::warnings::foreign_routes(&entries, &routes);
            if check_broker(a).is_some_and(|b| yaml::warnings::is_redis(&b)) {
                warnings.extend(yaml::warnings::redis_priorities(&entries));
            }
            print_warnings(&warnings);
            Ok(ExitCode::SUCCESS)
        }
        Err(errs) => {
            eprintln!("{errs}");
            eprintln!("{} error{} found", errs.0.len(), plural(errs.0.len()));
            Ok(ExitCode::FAILURE)
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `--broker`, else `CELERY_BROKER_URL`.
fn check_broker(a: &CheckArgs) -> Option<String> {
    a.broker
        .clone()
        .or_else(|| std::env::var("CELERY_BROKER_URL").ok())
        .filter(|s| !s.is_empty())
}

/// The first [`yaml::warnings::SHOWN`] warnings on stderr, then a count.
fn print_warnings(warnings: &[yaml::LoadError]) {
    for w in warnings.iter().take(yaml::warnings::SHOWN) {
        eprintln!("{w}");
    }
    if warnings.len() > yaml::warnings::SHOWN {
        eprintln!("... and {} more", warnings.len() - yaml::warnings::SHOWN);
    }
    if !warnings.is_empty() {
        eprintln!("{} warning{}", warnings.len(), plural(warnings.len()));
    }
}

/// `metronome next`: upcoming runs in time order, as a table or JSON lines.
pub fn next(a: &NextArgs) -> anyhow::Result<ExitCode> {
    let zone = default_zone(&a.zone)?;
    let entries =
        match yaml::expand_paths(&a.files).and_then(|files| yaml::load_files(&files, &zone)) {
            Ok(e) => e,
            Err(errs) => {
                eprintln!("{errs}");
                return Ok(ExitCode::FAILURE);
            }
        };
    let from = a.from.unwrap_or_else(|| SystemClock.now());
    let selected = select(&entries, a.name.as_deref())?;
    // Without run state, an interval is anchored at `--from`.
    let runs = upcoming(
        selected.into_iter().map(|e| (e, from)),
        from,
        a.until,
        a.count,
    );
    let mut out = std::io::stdout().lock();
    if a.json {
        print_json(&mut out, &runs)?;
    } else {
        print_table(&mut out, &runs)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The entry named by `--name`, else every entry.
fn select<'a>(entries: &'a [Entry], name: Option<&str>) -> anyhow::Result<Vec<&'a Entry>> {
    match name {
        Some(n) => {
            let e: Vec<_> = entries.iter().filter(|e| e.name == n).collect();
            if e.is_empty() {
                bail!("no schedule named `{n}`");
            }
            Ok(e)
        }
        None => Ok(entries.iter().collect()),
    }
}

/// `--json`: one object per run.
fn print_json(out: &mut impl Write, runs: &[(&Entry, Run)]) -> std::io::Result<()> {
    for (e, run) in runs {
        let at = run.due.to_zoned(e.timezone.clone());
        let line = serde_json::json!({
            "schedule": e.name, "task": e.task,
            "at": at.strftime("%Y-%m-%dT%H:%M:%S%.f%:z").to_string(),
            "utc": run.due.to_string(),
        });
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// The default output: aligned columns under a header.
fn print_table(out: &mut impl Write, runs: &[(&Entry, Run)]) -> std::io::Result<()> {
    let rows: Vec<[String; 4]> = runs
        .iter()
        .map(|(e, run)| {
            let at = run.due.to_zoned(e.timezone.clone());
            [
                format!(
                    "{} {}",
                    at.strftime("%Y-%m-%d %H:%M:%S%.f %:z"),
                    e.timezone_name
                ),
                run.due.to_string(),
                e.name.clone(),
                e.task.to_string(),
            ]
        })
        .collect();
    let head = ["AT (LOCAL)", "UTC", "SCHEDULE", "TASK"];
    let mut w = head.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |r: &[&str; 4]| {
        format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = w[0],
            w1 = w[1],
            w2 = w[2]
        )
    };
    writeln!(out, "{}", line(&head))?;
    for r in &rows {
        writeln!(
            out,
            "{}",
            line(&[r[0].as_str(), r[1].as_str(), r[2].as_str(), r[3].as_str()])
        )?;
    }
    if rows.is_empty() {
        writeln!(out, "(no runs in range)")?;
    }
    Ok(())
}

//! `metronome import celery|redbeat|django-celery-beat`: read a store with
//! the library's importers, write the schedule file, list what did not
//! convert.
//!
//! The written text is loaded back with the YAML loader before it is
//! written, so a file `import` writes is one `check` accepts. Exit codes:
//! 0 when the file was written, 1 when something did not convert (then
//! nothing is written, unless `--skip-unsupported` asks for the rest).

use std::io::Write as _;
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context as _, bail};

use metronome::db::django::DjangoDb;
use metronome::importer::{self, Import, writer};
use metronome::source::yaml;

use crate::{ImportArgs, ImportSource, OutputArgs};

/// `metronome import …`.
pub fn import(a: &ImportArgs) -> anyhow::Result<ExitCode> {
    let (import, label) = match &a.source {
        ImportSource::Celery { app, python, out } => (celery(app, python.as_deref())?, out),
        ImportSource::Redbeat {
            redis,
            key_prefix,
            timezone,
            out,
        } => {
            let stored = block_on(importer::redbeat::read(redis, key_prefix))??;
            let import =
                importer::redbeat::convert(&stored, redis, key_prefix, timezone.as_deref());
            (import, out)
        }
        ImportSource::DjangoCeleryBeat { database, out } => {
            let rows = block_on(async {
                let db = DjangoDb::connect(database).await?;
                let rows = db.tasks().await;
                db.pool.close().await;
                rows
            })??;
            (importer::django::convert(&rows, database), out)
        }
    };
    finish(&import, label)
}

/// Runs `f` on a runtime of its own (the importers' one async step).
fn block_on<T>(f: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

/// Runs the describer with the user's Python and converts what it prints.
fn celery(app: &str, python: Option<&str>) -> anyhow::Result<Import> {
    let python = python
        .map(str::to_string)
        .or_else(|| {
            std::env::var("VIRTUAL_ENV")
                .ok()
                .filter(|v| !v.is_empty())
                .map(|v| format!("{v}/bin/python"))
        })
        .unwrap_or_else(|| "python3".into());
    let mut child = Command::new(&python)
        .args(["-", app])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run `{python}` (give the app's Python with --python)"))?;
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(importer::celery::SCRIPT.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "`{python}` could not load the Celery app `{app}`:\n{}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    let described = importer::celery::parse(&String::from_utf8_lossy(&out.stdout))?;
    Ok(importer::celery::convert(&described))
}

/// Writes the file (to `-o` or stdout) unless something did not convert
/// and `--skip-unsupported` is off; lists what did not on stderr.
fn finish(import: &Import, out: &OutputArgs) -> anyhow::Result<ExitCode> {
    let text = writer::render(import);
    let label = out
        .output
        .as_ref()
        .map_or("<import>".to_string(), |p| p.display().to_string());
    if let Err(errs) = yaml::load_str(&label, &text, &None) {
        bail!(
            "the imported schedule does not validate (a bug in the importer):\n{errs}\n---\n{text}"
        );
    }
    for u in &import.unsupported {
        eprintln!("not converted: {u}");
    }
    let refused = !import.unsupported.is_empty();
    if refused && !out.skip_unsupported {
        eprintln!(
            "{} item{} not converted; nothing written (--skip-unsupported writes the rest)",
            import.unsupported.len(),
            if import.unsupported.len() == 1 {
                ""
            } else {
                "s"
            }
        );
        return Ok(ExitCode::FAILURE);
    }
    match &out.output {
        Some(p) => {
            std::fs::write(p, &text).with_context(|| format!("cannot write {}", p.display()))?
        }
        None => std::io::stdout().lock().write_all(text.as_bytes())?,
    }
    eprintln!(
        "imported {} schedule{}{}",
        import.entries.len(),
        if import.entries.len() == 1 { "" } else { "s" },
        if refused {
            format!(", skipped {}", import.unsupported.len())
        } else {
            String::new()
        }
    );
    Ok(ExitCode::SUCCESS)
}

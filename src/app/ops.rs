//! The operator's one-shot subcommands: `metronome healthcheck` (probe a
//! running instance) and `metronome migrate` (create or upgrade the
//! schedule tables).

use std::process::ExitCode;

use anyhow::Context as _;

use metronome::db::Db;
use metronome::redact::mask_url;

use crate::HealthArgs;

/// `metronome healthcheck`: exit 0 if the probed endpoint answers 200.
pub fn healthcheck(a: &HealthArgs) -> anyhow::Result<ExitCode> {
    use metronome::healthcheck;
    let path = if a.ready { "/readyz" } else { "/livez" };
    let timeout = std::time::Duration::try_from_secs_f64(a.timeout)
        .context("--timeout: expected a positive number of seconds")?;
    let addr = healthcheck::probe_addr(&a.http)?;
    match healthcheck::get(addr, path, timeout) {
        Ok((200, _)) => {
            println!("ok: {addr}{path} answered 200");
            Ok(ExitCode::SUCCESS)
        }
        Ok((code, body)) => {
            eprintln!("metronome: {addr}{path} answered {code}: {}", body.trim());
            Ok(ExitCode::FAILURE)
        }
        Err(e) => {
            eprintln!("metronome: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `metronome migrate`: connects to `url` and brings its tables up to date.
pub fn migrate(url: &str) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        println!("ok: database {} is up to date", mask_url(url));
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

//! Configuration that arrives around clap rather than through it: secrets
//! read from files (`METRONOME_API_TOKEN_FILE` and the like, as Docker and
//! Kubernetes secrets are mounted), and the warning for a secret given as
//! a command-line flag, where every user of the machine sees it in `ps`.

use anyhow::{Context as _, bail};
use clap::ArgMatches;
use clap::parser::ValueSource;

use metronome::redact::mask_url;

use super::LOG_TARGET;

/// The variables that may hold a secret; each also reads `<NAME>_FILE`.
pub const SECRET_VARS: &[&str] = &[
    "METRONOME_API_TOKEN",
    "METRONOME_BROKER_URL",
    "METRONOME_DATABASE_URL",
    "METRONOME_LOCK_URL",
    "CELERY_BROKER_URL",
];

/// For each of [`SECRET_VARS`] whose `<NAME>_FILE` is set: the file's
/// text, without its trailing line break, becomes `NAME`. Setting both is
/// an error, as is an unreadable or empty file.
pub fn read_secret_files() -> anyhow::Result<()> {
    for name in SECRET_VARS {
        let file_var = format!("{name}_FILE");
        let Some(path) = std::env::var_os(&file_var).filter(|p| !p.is_empty()) else {
            continue;
        };
        if std::env::var_os(name).is_some_and(|v| !v.is_empty()) {
            bail!("both {name} and {file_var} are set; set one of them");
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("{file_var}={}: cannot read", path.to_string_lossy()))?;
        let value = trim_line_break(&text);
        if value.is_empty() {
            bail!("{file_var}={}: the file is empty", path.to_string_lossy());
        }
        // SAFETY: called first thing in `main`, before any other thread
        // exists, so nothing reads the environment concurrently.
        unsafe { std::env::set_var(name, value) };
    }
    Ok(())
}

/// `text` without the line break(s) an editor or `echo` leaves at its end.
fn trim_line_break(text: &str) -> &str {
    text.trim_end_matches(['\n', '\r'])
}

/// The flags that carry secrets: always (`--api-token`), or when the URL
/// holds a password.
const SECRET_FLAGS: &[(&str, &str, bool)] = &[
    ("api_token", "METRONOME_API_TOKEN", true),
    ("broker", "METRONOME_BROKER_URL", false),
    ("database", "METRONOME_DATABASE_URL", false),
    ("lock", "METRONOME_LOCK_URL", false),
];

/// Warns for each secret given on the command line: other users see it
/// in `ps` and `/proc/PID/cmdline`.
pub fn warn_secret_flags(matches: &ArgMatches) {
    let Some((_, sub)) = matches.subcommand() else {
        return;
    };
    for (id, var, always) in SECRET_FLAGS {
        // `value_source` panics on an id the subcommand does not have.
        let known = sub.ids().any(|i| i.as_str() == *id);
        if !known || sub.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let Ok(Some(value)) = sub.try_get_one::<String>(id) else {
            continue;
        };
        if *always || mask_url(value) != *value {
            let flag = format!("--{}", id.replace('_', "-"));
            tracing::warn!(target: LOG_TARGET, flag = %flag,
                "{flag} on the command line is visible to every user of this machine (ps, /proc); set {var} or {var}_FILE instead");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_loses_only_its_trailing_line_break() {
        assert_eq!(trim_line_break("s3cret\n"), "s3cret");
        assert_eq!(trim_line_break("s3cret\r\n"), "s3cret");
        assert_eq!(trim_line_break(" s3 cret \n\n"), " s3 cret ");
        assert_eq!(trim_line_break("s3cret"), "s3cret");
    }
}

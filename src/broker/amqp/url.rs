//! Celery's AMQP broker URLs (`amqp://`, `pyamqp://`, `amqps://`) parsed
//! into lapin's [`AMQPUri`] and our [`AmqpOptions`].
//!
//! Owns the URL syntax: scheme, URL-decoded user info and vhost, host and
//! port (IPv6 in brackets), the connection keys of the query, and the
//! order of precedence of the environment and the query ([`AmqpUrlError`]).
//!
//! Invariant: pure; the environment is read only through the `env`
//! function the caller passes, and the query overrides it.

use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};

use super::options::{AmqpOptions, OptionError};

/// Why a broker URL is not a usable AMQP URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmqpUrlError {
    #[error("missing scheme")]
    MissingScheme,
    #[error("not an AMQP scheme: {0}")]
    Scheme(String),
    /// The part named (user name, password, vhost, query key or value).
    #[error("{0} is not valid UTF-8 after URL-decoding")]
    NotUtf8(&'static str),
    #[error("unclosed `[` in host")]
    UnclosedBracket,
    #[error("bad port `{0}`")]
    Port(String),
    #[error("`{key}` must be a number, not `{value}`")]
    NotANumber { key: String, value: String },
    /// A bad value of the environment variable `var`.
    #[error("{var}: {error}")]
    Env {
        var: &'static str,
        error: OptionError,
    },
    #[error(transparent)]
    Option(#[from] OptionError),
}

/// The environment variables and the option each sets.
const ENV_OPTIONS: [(&str, &str); 3] = [
    ("METRONOME_AMQP_QUEUE_DECLARE", "queue_declare"),
    ("METRONOME_AMQP_MAX_PRIORITY", "x-max-priority"),
    ("METRONOME_AMQP_QUEUE_TYPE", "x-queue-type"),
];

/// Parses a Celery AMQP URL into lapin's form and our options. Environment
/// variables (`METRONOME_AMQP_*`) apply first, the query overrides them.
pub fn parse_url(
    url: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<(AMQPUri, AmqpOptions), AmqpUrlError> {
    let (scheme, rest) = url.split_once("://").ok_or(AmqpUrlError::MissingScheme)?;
    let scheme = match scheme {
        "amqp" | "pyamqp" => AMQPScheme::AMQP,
        "amqps" => AMQPScheme::AMQPS,
        s => return Err(AmqpUrlError::Scheme(s.to_string())),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = match rest.split_once('/') {
        Some((a, p)) => (a, p),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let userinfo = parse_userinfo(userinfo)?;
    let (host, port) = split_host_port(hostport)?;
    let port = port.unwrap_or(match scheme {
        AMQPScheme::AMQP => 5672,
        AMQPScheme::AMQPS => 5671,
    });
    let vhost = match decode(path, "vhost")? {
        v if v.is_empty() => "/".to_string(),
        v => v,
    };
    let mut opts = options_from_env(env)?;
    let query = parse_query(query, &mut opts)?;
    let authority = AMQPAuthority {
        userinfo,
        host,
        port,
    };
    let uri = AMQPUri {
        scheme,
        authority,
        vhost,
        query,
    };
    Ok((uri, opts))
}

/// `s` URL-decoded; `what` names the part for the error.
fn decode(s: &str, what: &'static str) -> Result<String, AmqpUrlError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| AmqpUrlError::NotUtf8(what))
}

/// `user:password` (either may be missing; lapin's defaults stay).
fn parse_userinfo(userinfo: Option<&str>) -> Result<AMQPUserInfo, AmqpUrlError> {
    let mut user = AMQPUserInfo::default();
    if let Some(u) = userinfo {
        let (name, pass) = u.split_once(':').unwrap_or((u, ""));
        if !name.is_empty() {
            user.username = decode(name, "user name")?;
        }
        if u.contains(':') {
            user.password = decode(pass, "password")?;
        }
    }
    Ok(user)
}

/// The options the `METRONOME_AMQP_*` variables set (empty ones are unset).
fn options_from_env(env: impl Fn(&str) -> Option<String>) -> Result<AmqpOptions, AmqpUrlError> {
    let mut opts = AmqpOptions::default();
    for (var, key) in ENV_OPTIONS {
        if let Some(v) = env(var).filter(|v| !v.is_empty()) {
            opts.set(key, &v)
                .map_err(|error| AmqpUrlError::Env { var, error })?;
        }
    }
    Ok(opts)
}

/// The query: connection keys go to lapin, every other key is an option.
fn parse_query(query: &str, opts: &mut AmqpOptions) -> Result<AMQPQueryString, AmqpUrlError> {
    let mut q = AMQPQueryString::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k, "query key")?, decode(v, "query value")?);
        let num = |v: &str| {
            v.parse::<u64>().map_err(|_| AmqpUrlError::NotANumber {
                key: k.clone(),
                value: v.to_string(),
            })
        };
        match k.as_str() {
            "heartbeat" => q.heartbeat = Some(num(&v)? as u16),
            "connection_timeout" => q.connection_timeout = Some(num(&v)?),
            "frame_max" => q.frame_max = Some(num(&v)? as u32),
            "channel_max" => q.channel_max = Some(num(&v)? as u16),
            _ => opts.set(&k, &v)?,
        }
    }
    Ok(q)
}

/// `host:port`, `[v6]:port`, or either without a port; an empty host is
/// `localhost`.
fn split_host_port(s: &str) -> Result<(String, Option<u16>), AmqpUrlError> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or(AmqpUrlError::UnclosedBracket)?;
        (h, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = port
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u16>()
                .map_err(|_| AmqpUrlError::Port(p.to_string()))
        })
        .transpose()?;
    let host = if host.is_empty() { "localhost" } else { host };
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::super::options::QueueDeclare;
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_celery_urls() {
        let (u, o) = parse_url("amqp://guest:guest@localhost:5672//", no_env).unwrap();
        assert_eq!(u.vhost, "/");
        assert_eq!(u.authority.host, "localhost");
        assert_eq!(u.authority.port, 5672);
        assert_eq!(o, AmqpOptions::default());
        let (u, _) = parse_url("amqp://10.1.2.3", no_env).unwrap();
        assert_eq!(
            (u.authority.host.as_str(), u.vhost.as_str()),
            ("10.1.2.3", "/")
        );
        assert_eq!(u.authority.userinfo.username, "guest");
        let (u, _) = parse_url("amqps://u%40x:p%3Aw@h/my%2Fvhost", no_env).unwrap();
        assert_eq!(u.scheme, AMQPScheme::AMQPS);
        assert_eq!(u.authority.port, 5671);
        assert_eq!(u.authority.userinfo.username, "u@x");
        assert_eq!(u.authority.userinfo.password, "p:w");
        assert_eq!(u.vhost, "my/vhost");
        let (u, o) = parse_url(
            "pyamqp://h:1234/v?queue_declare=passive&x-max-priority=10&x-queue-type=quorum&heartbeat=30",
            no_env,
        )
        .unwrap();
        assert_eq!(u.vhost, "v");
        assert_eq!(u.authority.port, 1234);
        assert_eq!(u.query.heartbeat, Some(30));
        assert_eq!(o.declare, QueueDeclare::Passive);
        assert_eq!(o.max_priority, Some(10));
        assert_eq!(o.queue_type.as_deref(), Some("quorum"));
        assert!(parse_url("amqp://h/?queue_declare=maybe", no_env).is_err());
        assert!(parse_url("amqp://h/?x-max-priority=300", no_env).is_err());
        assert!(parse_url("amqp://h/?bogus=1", no_env).is_err());
    }

    #[test]
    fn query_overrides_environment() {
        let env = |k: &str| match k {
            "METRONOME_AMQP_QUEUE_DECLARE" => Some("none".to_string()),
            "METRONOME_AMQP_MAX_PRIORITY" => Some("5".to_string()),
            _ => None,
        };
        let (_, o) = parse_url("amqp://h//?x-max-priority=10", env).unwrap();
        assert_eq!(o.declare, QueueDeclare::None);
        assert_eq!(o.max_priority, Some(10));
    }

    #[test]
    fn errors_keep_their_messages() {
        let cases = [
            ("localhost:5672", "missing scheme"),
            ("http://h", "not an AMQP scheme: http"),
            (
                "amqp://h/%ff",
                "vhost is not valid UTF-8 after URL-decoding",
            ),
            (
                "amqp://%ff:p@h",
                "user name is not valid UTF-8 after URL-decoding",
            ),
            ("amqp://[::1:5672", "unclosed `[` in host"),
            ("amqp://h:99999", "bad port `99999`"),
            (
                "amqp://h/?heartbeat=soon",
                "`heartbeat` must be a number, not `soon`",
            ),
            (
                "amqp://h/?queue_declare=maybe",
                "queue_declare must be auto, declare, passive or none, not `maybe`",
            ),
            ("amqp://h/?bogus=1", "unknown option `bogus`"),
        ];
        for (url, message) in cases {
            let e = parse_url(url, no_env).unwrap_err();
            assert_eq!(e.to_string(), message, "{url}");
        }
        let env = |k: &str| (k == "METRONOME_AMQP_MAX_PRIORITY").then(|| "x".to_string());
        let e = parse_url("amqp://h", env).unwrap_err();
        assert_eq!(
            e.to_string(),
            "METRONOME_AMQP_MAX_PRIORITY: x-max-priority must be 0..255, not `x`"
        );
    }
}

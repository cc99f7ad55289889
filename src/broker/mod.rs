//! Getting messages to a broker. Each transport owns its connection and
//! reports, per message, whether the broker has it.

pub mod amqp;
pub mod redis;
pub mod stdout;

use crate::celery::message::Message;

/// A publish that did not reach the broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The broker could not be reached or refused the message; it was not
    /// delivered.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The outcome is unknown (timed out after sending). Never retried
    /// blindly: a retry could duplicate the run.
    #[error("publish outcome unknown: {0}")]
    Unknown(String),
    /// Not sent: the lease check in the fenced publish failed (another
    /// instance leads now).
    #[error("not sent: this instance no longer holds the lease")]
    Deposed,
}

/// A broker URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid broker URL `{url}`: {reason}")]
pub struct BrokerUrlError {
    /// The URL with any password masked.
    pub url: String,
    pub reason: String,
}

/// A transport. Network brokers connect lazily and reconnect on their own;
/// while one is unreachable every publish reports
/// [`PublishError::Unavailable`].
// One per process, created once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
pub enum Broker {
    Stdout(stdout::StdoutBroker),
    Redis(redis::RedisBroker),
    Amqp(amqp::AmqpBroker),
}

impl Broker {
    /// Sets up the broker named by `url` and tries to reach it once. An
    /// unreachable broker is logged, not an error: the service keeps
    /// retrying. Only an unusable URL fails.
    pub async fn connect(url: &str) -> Result<Broker, BrokerUrlError> {
        let mut broker = Broker::new(url)?;
        if let Err(e) = broker.ping().await {
            tracing::warn!(broker = %mask_url(url), error = %e, "broker not reachable yet; will keep retrying");
        }
        Ok(broker)
    }

    /// Sets up the broker named by `url` without connecting (it connects
    /// at its first use). Only an unusable URL fails.
    pub fn new(url: &str) -> Result<Broker, BrokerUrlError> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        let broker = match scheme {
            "stdout" => Broker::Stdout(stdout::StdoutBroker::new()),
            "redis" | "rediss" => Broker::Redis(redis::RedisBroker::new(url)?),
            "amqp" | "amqps" | "pyamqp" => Broker::Amqp(amqp::AmqpBroker::new(url)?),
            _ => {
                return Err(BrokerUrlError {
                    url: mask_url(url),
                    reason: "unsupported scheme; expected redis://, rediss://, amqp://, amqps:// or stdout://".into(),
                });
            }
        };
        Ok(broker)
    }

    /// Checks that the broker answers (connecting if needed).
    pub async fn ping(&mut self) -> Result<(), PublishError> {
        match self {
            Broker::Stdout(_) => Ok(()),
            Broker::Redis(b) => b.ping().await,
            Broker::Amqp(b) => b.ping().await,
        }
    }

    /// Publishes `messages` in order; one result per message.
    pub async fn publish(&mut self, messages: &[Message]) -> Vec<Result<(), PublishError>> {
        match self {
            Broker::Stdout(b) => b.publish(messages).await,
            Broker::Redis(b) => b.publish(messages).await,
            Broker::Amqp(b) => b.publish(messages).await,
        }
    }
}

/// Installs rustls' ring provider as the process default, once; both the
/// redis and the AMQP TLS stacks use it.
pub(crate) fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first; that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// `url` with the password (if any) replaced by `***`, for logs: the one in
/// the user info and query parameters such as `?password=` (PostgreSQL and
/// redis-rs take those too).
pub fn mask_url(url: &str) -> String {
    let masked = mask_userinfo(url);
    let Some((base, query)) = masked.split_once('?') else {
        return masked;
    };
    let query: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                format!("{k}=***")
            }
            _ => kv.to_string(),
        })
        .collect();
    format!("{base}?{}", query.join("&"))
}

/// Query parameters whose values are secrets.
const SECRET_PARAMS: &[&str] = &["password", "pass", "pwd", "sslpassword", "token", "secret"];

fn mask_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth_end, _) = rest
        .char_indices()
        .find(|(_, c)| *c == '/' || *c == '?')
        .unwrap_or((rest.len(), ' '));
    let (authority, tail) = rest.split_at(auth_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map(|(u, _)| u).unwrap_or(userinfo);
            if userinfo.contains(':') {
                format!("{scheme}://{user}:***@{host}{tail}")
            } else {
                format!("{scheme}://{user}@{host}{tail}")
            }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords() {
        assert_eq!(
            mask_url("redis://:s3cret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            mask_url("amqp://guest:guest@localhost:5672/vh"),
            "amqp://guest:***@localhost:5672/vh"
        );
        assert_eq!(mask_url("redis://host/0"), "redis://host/0");
        assert_eq!(mask_url("redis://user@host"), "redis://user@host");
        assert_eq!(
            mask_url("rediss://u:p@ss@h/0?x=1"),
            "rediss://u:***@h/0?x=1"
        );
        assert_eq!(
            mask_url("postgres://h/db?user=a&password=s3cret&sslmode=require"),
            "postgres://h/db?user=a&password=***&sslmode=require"
        );
    }
}

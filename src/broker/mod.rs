//! Getting messages to a broker. Each transport owns its connection and
//! reports, per message, whether the broker has it.

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
}

/// A broker URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid broker URL `{url}`: {reason}")]
pub struct BrokerUrlError {
    /// The URL with any password masked.
    pub url: String,
    pub reason: String,
}

/// A connected transport.
pub enum Broker {
    Stdout(stdout::StdoutBroker),
}

impl Broker {
    /// Connects to the broker named by `url`.
    pub async fn connect(url: &str) -> Result<Broker, BrokerUrlError> {
        let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
        match scheme {
            "stdout" => Ok(Broker::Stdout(stdout::StdoutBroker::new())),
            _ => Err(BrokerUrlError {
                url: mask_url(url),
                reason: "unsupported scheme; expected stdout://".into(),
            }),
        }
    }

    /// Publishes `messages` in order; one result per message.
    pub async fn publish(&mut self, messages: &[Message]) -> Vec<Result<(), PublishError>> {
        match self {
            Broker::Stdout(b) => b.publish(messages).await,
        }
    }
}

/// `url` with the password (if any) replaced by `***`, for logs.
pub fn mask_url(url: &str) -> String {
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
    }
}

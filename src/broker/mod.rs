//! Getting messages to a broker: the adapters behind the
//! [`Broker`](crate::ports::broker::Broker) port, and [`open`], which picks
//! one by URL scheme.
//!
//! **Invariant:** adding a transport touches only this module (a file of
//! its own and one arm in [`open`]).

pub mod amqp;
pub mod redis;
pub mod stdout;

pub use crate::ports::broker::{AtomicPublish, Broker, PublishError, Published};
pub use crate::redact::mask_url;

/// A broker URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid broker URL `{url}`: {reason}")]
pub struct BrokerUrlError {
    /// The URL with any password masked.
    pub url: String,
    pub reason: String,
}

/// Sets up the broker named by `url` without connecting (it connects at
/// its first use). Only an unusable URL fails. With `fence`, a Redis
/// broker publishes under the lease atomically (see
/// [`redis::RedisBroker::fence_with`]); other transports ignore it.
pub fn open(url: &str, fence: Option<redis::FenceKeys>) -> Result<Box<dyn Broker>, BrokerUrlError> {
    let scheme = url.split_once("://").map(|(s, _)| s).unwrap_or("");
    let broker: Box<dyn Broker> = match scheme {
        "stdout" => Box::new(stdout::StdoutBroker::new()),
        "redis" | "rediss" => {
            let mut b = redis::RedisBroker::new(url)?;
            if let Some(keys) = fence {
                b.fence_with(keys);
            }
            Box::new(b)
        }
        "amqp" | "amqps" | "pyamqp" => Box::new(amqp::AmqpBroker::new(url)?),
        _ => {
            return Err(BrokerUrlError {
                url: mask_url(url),
                reason: "unsupported scheme; expected redis://, rediss://, amqp://, amqps:// or stdout://".into(),
            });
        }
    };
    Ok(broker)
}

/// [`open`], then one try to reach the broker. An unreachable broker is
/// logged, not an error: the service keeps retrying. Only an unusable URL
/// fails.
pub async fn connect(
    url: &str,
    fence: Option<redis::FenceKeys>,
) -> Result<Box<dyn Broker>, BrokerUrlError> {
    let mut broker = open(url, fence)?;
    if let Err(e) = broker.ping().await {
        tracing::warn!(broker = %mask_url(url), error = %e, "broker not reachable yet; will keep retrying");
    }
    Ok(broker)
}

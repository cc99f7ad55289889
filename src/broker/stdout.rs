//! `stdout://`: prints each message as one JSON line in kombu's Redis
//! envelope form. For trying schedules out and for piping into tools.

use tokio::io::{AsyncWriteExt, Stdout};

use super::{Broker, PublishError, Published};
use crate::celery::message::{Message, redis_envelope};
use crate::ports::BoxFuture;

pub struct StdoutBroker {
    out: Stdout,
}

impl Default for StdoutBroker {
    fn default() -> Self {
        StdoutBroker::new()
    }
}

impl StdoutBroker {
    pub fn new() -> StdoutBroker {
        StdoutBroker {
            out: tokio::io::stdout(),
        }
    }

    pub async fn publish(&mut self, messages: &[Message]) -> Vec<Result<(), PublishError>> {
        let mut buf = String::new();
        for m in messages {
            buf.push_str(&redis_envelope(m));
            buf.push('\n');
        }
        let r = async {
            self.out.write_all(buf.as_bytes()).await?;
            self.out.flush().await
        }
        .await
        .map_err(|e| PublishError::Unavailable(format!("writing to stdout: {e}")));
        messages.iter().map(|_| r.clone()).collect()
    }
}

impl Broker for StdoutBroker {
    fn ping(&mut self) -> BoxFuture<'_, Result<(), PublishError>> {
        Box::pin(async { Ok(()) })
    }

    fn publish<'a>(&'a mut self, messages: &'a [Message]) -> BoxFuture<'a, Published> {
        Box::pin(StdoutBroker::publish(self, messages))
    }
}

//! `stdout://`: prints each message as one JSON line in kombu's Redis
//! envelope form. For trying schedules out and for piping into tools.

use tokio::io::{AsyncWriteExt, Stdout};

use super::PublishError;
use crate::celery::message::{Message, redis_envelope};

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

//! Applying what the inbox brings: entries added, replaced or removed,
//! run-now requests, and reads of the scheduler.
//!
//! **Invariant:** a command is a turn of its own: it reads the clock once
//! and its state changes are saved before the next turn.

use tracing::info;

use super::beat::Beat;
use super::inbox::RunNowError;
use super::{Command, ServiceError};
use crate::celery::message;
use crate::state::{HistoryItem, HistoryOutcome};

impl Beat {
    /// Applies `cmd`, then saves if the run state changed.
    pub async fn command(&mut self, cmd: Command) -> Result<(), ServiceError> {
        if self.apply(cmd).await {
            self.save_or_pause().await?;
        }
        Ok(())
    }

    /// Applies a command; true if the run state changed and should be saved.
    async fn apply(&mut self, cmd: Command) -> bool {
        let now = self.clock.now();
        match cmd {
            Command::Upsert(entries) => {
                let n = entries.len();
                for e in entries {
                    let st = self.states.remove(&e.name);
                    self.dirty.changed.insert(e.name.clone());
                    self.sched.upsert(e, st, now);
                }
                info!(entries = n, "schedule entries added or replaced");
                true
            }
            Command::Remove(names) => {
                for n in &names {
                    if self.sched.remove(n).is_some() {
                        self.dirty.changed.remove(n);
                        self.dirty.removed.push(n.clone());
                    }
                }
                info!(entries = names.len(), "schedule entries removed");
                true
            }
            Command::RunNow { name, reply } => {
                let result = self.run_now(&name, now).await;
                let recorded = match &result {
                    Ok(id) => self.sched.push_history(
                        &name,
                        HistoryItem {
                            at: Some(now),
                            task_id: Some(id.to_string()),
                            ..HistoryItem::new(HistoryOutcome::Requested)
                        },
                    ),
                    Err(_) => false,
                };
                if recorded {
                    self.dirty.changed.insert(name);
                }
                let _ = reply.send(result);
                recorded
            }
            Command::Inspect(f) => {
                f(&self.sched);
                false
            }
        }
    }

    /// Publishes one run of `name` outside its schedule, with a fresh task id.
    async fn run_now(
        &mut self,
        name: &str,
        now: jiff::Timestamp,
    ) -> Result<uuid::Uuid, RunNowError> {
        let Some((entry, _, _)) = self.sched.get(name) else {
            return Err(RunNowError::NoSuchSchedule(name.to_string()));
        };
        let m = message::build(entry, None, now, &self.publisher);
        match self.broker.publish(std::slice::from_ref(&m)).await.pop() {
            Some(Ok(())) => {
                info!(entry = %name, task = %entry.task, task_id = %m.task_id, "dispatched on request");
                crate::metrics::requested();
                Ok(m.task_id)
            }
            Some(Err(e)) => Err(e.into()),
            None => Err(RunNowError::NoResult),
        }
    }
}

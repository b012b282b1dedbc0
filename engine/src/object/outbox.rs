//! The event outbox seen from outside: what waits to be published, and removing what was
//! (see [`crate::events`]).

use crate::error::Result;
use crate::events::EventRecord;
use crate::kv::{Read, Table};

use super::Engine;

impl Engine {
    /// Up to `limit` events waiting to be published, oldest first, each with the key that
    /// [`Engine::events_published`] takes.
    pub fn pending_events(&self, limit: usize) -> Result<Vec<(Vec<u8>, EventRecord)>> {
        let txn = self.read()?;
        crate::events::pending(&txn, limit)
    }

    /// Removes events that were published.
    pub async fn events_published(&self, keys: Vec<Vec<u8>>) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.commit(move |txn| {
            for k in &keys {
                txn.delete(Table::Events, k)?;
            }
            Ok(())
        })
        .await
    }

    /// Events waiting to be published.
    pub fn event_backlog(&self) -> Result<u64> {
        let txn = self.read()?;
        txn.count(Table::Events)
    }
}

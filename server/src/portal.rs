//! The server's implementation of what the UI's server functions read. Errors are logged here
//! with their detail and reach the browser only as a generic message.

use async_trait::async_trait;
use uketsuke_app::{
    api::LinkState,
    ssr::{DataError, PortalData},
};

use crate::storage::{self, Db};

pub struct Portal {
    db: Db,
}

impl Portal {
    pub fn new(db: Db) -> Self {
        Portal { db }
    }
}

fn hide(error: storage::StorageError) -> DataError {
    tracing::error!(%error, "storage error");
    DataError("temporarily unavailable".to_owned())
}

#[async_trait]
impl PortalData for Portal {
    async fn landing(&self, link_id: &str) -> Result<LinkState, DataError> {
        storage::links::landing(&self.db, link_id, storage::now_millis())
            .await
            .map_err(hide)
    }
}

//! The service itself: plain generated-trait code that reads the principal the policy
//! left in each request.

use std::{collections::BTreeMap, sync::Mutex};

use portcullis::{Principal, guard::grpc::RequestExt};
use tonic::{Request, Response, Status};

use crate::pb::{
    AddRequest, Item, ListReply, ListRequest, PurgeReply, PurgeRequest, inventory_server::Inventory,
};

/// Above this many units, `Add` also needs the scope `inventory:bulk`.
pub const BULK: u32 = 100;

/// Item names to quantities, in memory.
#[derive(Debug, Default)]
pub struct Store {
    items: Mutex<BTreeMap<String, u32>>,
}

impl Store {
    fn items(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, u32>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.items
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[tonic::async_trait]
impl Inventory for Store {
    async fn list(&self, request: Request<ListRequest>) -> Result<Response<ListReply>, Status> {
        // An anonymous method: a principal only if the caller sent a credential.
        let caller = request
            .extensions()
            .get::<Principal>()
            .map_or("anonymous", Principal::subject)
            .to_owned();
        let items = self
            .items()
            .iter()
            .map(|(name, quantity)| Item {
                name: name.clone(),
                quantity: *quantity,
            })
            .collect();
        Ok(Response::new(ListReply { items, caller }))
    }

    async fn add(&self, request: Request<AddRequest>) -> Result<Response<Item>, Status> {
        // What the table cannot say, because it depends on the message.
        if request.get_ref().quantity > BULK {
            request.require_scope("inventory:bulk")?;
        }
        let AddRequest { name, quantity } = request.into_inner();
        if name.is_empty() || quantity == 0 {
            return Err(Status::invalid_argument(
                "an item needs a name and a quantity",
            ));
        }
        let mut items = self.items();
        let stock = items.entry(name.clone()).or_default();
        *stock = stock.saturating_add(quantity);
        Ok(Response::new(Item {
            name,
            quantity: *stock,
        }))
    }

    async fn purge(&self, request: Request<PurgeRequest>) -> Result<Response<PurgeReply>, Status> {
        let purged_by = request.principal()?.subject().to_owned();
        let mut items = self.items();
        let removed = u32::try_from(items.len()).unwrap_or(u32::MAX);
        items.clear();
        Ok(Response::new(PurgeReply { removed, purged_by }))
    }
}

//! Serves `inventory.Inventory` on an ephemeral loopback port, calls each method as
//! four callers with the generated client, and prints what each call got.

use std::error::Error;

use tokio::net::TcpListener;
use tonic_inventory::{
    connect,
    pb::{AddRequest, ListRequest, PurgeRequest, inventory_client::InventoryClient},
    request, serve,
    tokens::mint,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, async {
        let _ = stopped.await;
    }));
    println!("inventory.Inventory listening on {addr}");

    let mut client = InventoryClient::new(connect(addr).await?);
    let reader = mint("rita", "profile", &[]);
    let clerk = mint("carl", "inventory:write", &[]);
    let admin = mint("ada", "inventory:write", &["admin"]);
    let callers = [
        ("no token", None),
        ("reader", Some(reader.as_str())),
        ("clerk", Some(clerk.as_str())),
        ("admin", Some(admin.as_str())),
    ];
    for (who, token) in callers {
        let add = AddRequest {
            name: "widget".into(),
            quantity: 2,
        };
        let outcomes = [
            (
                "List",
                describe(client.list(request(ListRequest {}, token)).await),
            ),
            ("Add", describe(client.add(request(add, token)).await)),
            (
                "Purge",
                describe(client.purge(request(PurgeRequest {}, token)).await),
            ),
        ];
        for (method, outcome) in outcomes {
            println!("{who:>8} {method:<5} {outcome}");
        }
    }

    let _ = stop.send(());
    server.await??;
    Ok(())
}

fn describe<T: std::fmt::Debug>(result: Result<tonic::Response<T>, tonic::Status>) -> String {
    match result {
        Ok(reply) => format!("ok: {:?}", reply.into_inner()),
        Err(status) => format!("{:?}: {}", status.code(), status.message()),
    }
}

//! The per-method policy against the server-wide auth layer plus one guard, per call on
//! a tonic loopback server.
//!
//! `cargo bench -p tonic-inventory --bench policy`
//!
//! Both servers host `inventory.Inventory` on 127.0.0.1 and are called, one call at a
//! time over one HTTP/2 connection, on `Purge` with the same admin token (an HS256 JWT,
//! in the verified-token cache after the first call). Client and servers share one
//! single-threaded runtime, so a call's time is the work of both ends and the loopback
//! round trip, without cross-thread wake-ups (which on a busy machine are most of the
//! noise):
//!
//! - `policy_layer`: the example's [`PolicyLayer`](portcullis::guard::PolicyLayer),
//!   which looks the method up in its table, authenticates and checks the role;
//! - `auth_layer_and_guard`: `AuthLayer` then `RequireRoleLayer` on the whole server,
//!   what the same check took before the policy existed.
//!
//! `in_process` runs the same two stacks around a service that answers at once, with
//! `oneshot` and no network: the layers' own cost, which the loopback figures bury.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::{convert::Infallible, future::pending};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::{AuthLayer, guard::RequireRoleLayer};
use tokio::{net::TcpListener, runtime::Builder};
use tonic::transport::{Channel, Server, server::TcpIncoming};
use tonic_inventory::{
    connect,
    pb::{PurgeRequest, inventory_client::InventoryClient, inventory_server::InventoryServer},
    policy::policy,
    request, serve,
    store::Store,
    tokens::{authenticator, mint},
};
use tower::{Layer, ServiceBuilder, ServiceExt, service_fn};

/// Starts the server behind the policy (`true`) or the auth layer and the guard.
async fn start(policy: bool) -> InventoryClient<Channel> {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    if policy {
        tokio::spawn(serve(listener, pending()));
    } else {
        let server = Server::builder()
            .layer(AuthLayer::new(authenticator().expect("authenticator")).realm("inventory"))
            .layer(RequireRoleLayer::any(["admin"]))
            .add_service(InventoryServer::new(Store::default()))
            .serve_with_incoming(TcpIncoming::from(listener));
        tokio::spawn(server);
    }
    InventoryClient::new(connect(addr).await.expect("connect"))
}

fn loopback(c: &mut Criterion) {
    let runtime = Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let token = mint("ada", "inventory:write", &["admin"]);
    let clients = [
        ("policy_layer", runtime.block_on(start(true))),
        ("auth_layer_and_guard", runtime.block_on(start(false))),
    ];
    let mut group = c.benchmark_group("tonic_loopback_purge");
    for (name, mut client) in clients {
        group.bench_function(name, |b| {
            b.iter(|| {
                let call = client.purge(request(PurgeRequest {}, Some(&token)));
                runtime.block_on(call).expect("the admin may purge")
            });
        });
    }
    group.finish();
}

fn in_process(c: &mut Criterion) {
    let runtime = Builder::new_current_thread().build().expect("runtime");
    let token = mint("ada", "inventory:write", &["admin"]);
    let purge = || {
        http::Request::post("/inventory.Inventory/Purge")
            .header("content-type", "application/grpc")
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .expect("request")
    };
    let answer = service_fn(|_: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(tonic::body::Body::empty()))
    });
    let policy = policy(authenticator().expect("authenticator")).layer(answer);
    let guarded = ServiceBuilder::new()
        .layer(AuthLayer::new(authenticator().expect("authenticator")).realm("inventory"))
        .layer(RequireRoleLayer::any(["admin"]))
        .service(answer);
    let mut group = c.benchmark_group("in_process_purge");
    group.bench_function("policy_layer", |b| {
        b.iter(|| runtime.block_on(policy.clone().oneshot(purge())))
    });
    group.bench_function("auth_layer_and_guard", |b| {
        b.iter(|| runtime.block_on(guarded.clone().oneshot(purge())))
    });
    group.finish();
}

criterion_group!(benches, loopback, in_process);
criterion_main!(benches);

//! The README example: issue a key, protect a route, call it.

use axum::{Router, body::Body, http::Request, routing::get};
use portcullis_apikey::{ApiKeys, KeyFormat, MemoryStore, NewApiKey};
use portcullis_core::{AuthLayer, Principal};
use tower::ServiceExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys = ApiKeys::new(MemoryStore::new(), KeyFormat::new("pk_live_")?);
    let issued = keys
        .issue(
            NewApiKey::owned_by("svc-billing")
                .name("exporter")
                .scopes(["invoices:read"]),
        )
        .await?;
    println!("your key (shown once): {}", issued.key().expose_secret());

    let app = Router::new()
        .route(
            "/invoices",
            get(|p: Principal| async move { format!("hello {}", p.subject()) }),
        )
        .route_layer(AuthLayer::new(keys.authenticator())); // X-API-Key or Authorization: Bearer pk_live_…

    let req = Request::get("/invoices")
        .header("x-api-key", issued.key().to_header_value())
        .body(Body::empty())?;
    assert_eq!(app.oneshot(req).await?.status(), 200);
    keys.revoke(issued.id()).await?; // from now on: 401 invalid_token
    Ok(())
}

//! A gRPC service protected by Portcullis: core's `AuthLayer` authenticates each call,
//! and a `RequireScopeLayer` lets in only callers holding the `data:read` scope.
//!
//! ```text
//! cargo run --example tonic_guard
//! ```
//!
//! The server listens on an ephemeral loopback port; `main` then calls it three times
//! with a tonic client (no token, a token without the scope, a token with it) and
//! prints what each call got: `Unauthenticated`, `PermissionDenied`, and a reply.
//!
//! Bearer tokens are HS256 JWTs verified by `portcullis-jwt` (minted here with a demo
//! secret); machine clients may send an `x-api-key` instead, checked by a small demo
//! authenticator. The guard sees only the resulting principal, whichever it was.
//!
//! The messages are plain `prost` structs and the service and client are written
//! against tonic's codec API, so the example needs no `.proto` compiler. The layers
//! answer in tonic's own body type, which Portcullis' `tonic` feature lets them write
//! a refusal into.

use std::{
    error::Error,
    future::Future,
    net::SocketAddr,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use http::{request::Parts, uri::PathAndQuery};
use portcullis::{
    AuthError, AuthLayer, AuthResult, Authenticator, MaybeReady, Principal, PrincipalKind,
    guard::{RequireScopeLayer, scopes},
    jwt::{Algorithm, JwtAuthenticator, Key},
};
use tokio::net::TcpListener;
use tonic::{
    Code, Status,
    body::Body,
    codegen::{BoxFuture, Context, Poll, Service, StdError},
    server::NamedService,
    transport::{Channel, Server, server::TcpIncoming},
};
use tonic_prost::ProstCodec;

scopes! {
    /// Reading from the store.
    pub ReadData = "data:read",
}

/// `demo.Store/Get` request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetRequest {
    /// The key to read.
    #[prost(string, tag = "1")]
    pub key: String,
}

/// `demo.Store/Get` reply.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetReply {
    /// The value stored under the key.
    #[prost(string, tag = "1")]
    pub value: String,
    /// Who asked (the principal's subject).
    #[prost(string, tag = "2")]
    pub caller: String,
}

const GET_PATH: &str = "/demo.Store/Get";

/// The issuer the demo tokens name.
pub const ISSUER: &str = "https://issuer.example";
/// The audience the demo tokens name: this service.
pub const AUDIENCE: &str = "demo-store";
/// The demo HS256 secret. A real one comes from configuration, never from code.
pub const SECRET: &[u8; 32] = b"demo-secret-of-at-least-32-bytes";

/// Signs a five-minute HS256 access token for `subject` with `scope` (space-separated),
/// as an authorization server would.
///
/// # Errors
///
/// When signing fails.
pub fn mint(subject: &str, scope: &str) -> Result<String, jsonwebtoken::errors::Error> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = serde_json::json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": subject, "scope": scope,
        "iat": now, "exp": now + 300,
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET),
    )
}

/// Demo API keys for machine clients, in `x-api-key` (a stand-in for the API-key
/// authenticator): the guard treats their principals exactly like token holders.
#[derive(Debug)]
pub struct DemoApiKeys;

impl Authenticator for DemoApiKeys {
    fn authenticate(&self, parts: &Parts) -> MaybeReady<AuthResult> {
        let scopes: &[&str] = match parts.headers.get("x-api-key").map(|v| v.as_bytes()) {
            None => return MaybeReady::Ready(Ok(None)),
            Some(b"backup-key") => &["data:read"],
            Some(b"metrics-key") => &["metrics:read"],
            Some(_) => {
                return MaybeReady::Ready(Err(AuthError::invalid_token("unknown_api_key")));
            }
        };
        let name = if scopes == ["data:read"] {
            "backup-job"
        } else {
            "metrics-job"
        };
        MaybeReady::Ready(Ok(Some(
            Principal::builder(name, PrincipalKind::ApiKey)
                .scopes(scopes.iter().copied())
                .build(),
        )))
    }
}

/// The authenticators: HS256 bearer JWTs, then API keys.
///
/// # Errors
///
/// When the key or the verifier configuration is refused.
pub fn authenticator() -> Result<(JwtAuthenticator, DemoApiKeys), Box<dyn Error + Send + Sync>> {
    let jwt = JwtAuthenticator::builder()
        .key(Key::hmac(Algorithm::HS256, SECRET)?)
        .issuer(ISSUER)
        .audience(AUDIENCE)
        .build()?;
    Ok((jwt, DemoApiKeys))
}

/// The `demo.Store` gRPC service, written against tonic's server API.
#[derive(Debug, Clone)]
pub struct StoreServer {
    data: Arc<[(&'static str, &'static str)]>,
}

impl StoreServer {
    /// A store holding a few fixed entries.
    pub fn new() -> Self {
        Self {
            data: Arc::new([("greeting", "hello"), ("answer", "42")]),
        }
    }

    fn get(&self, request: tonic::Request<GetRequest>) -> Result<GetReply, Status> {
        // The auth layer put the principal into the request; tonic keeps extensions.
        let caller = request
            .extensions()
            .get::<Principal>()
            .map(|p| p.subject().to_owned())
            .ok_or_else(|| Status::internal("no principal"))?;
        let key = request.into_inner().key;
        let value = self
            .data
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| (*v).to_owned())
            .ok_or_else(|| Status::not_found("no such key"))?;
        Ok(GetReply { value, caller })
    }
}

impl Default for StoreServer {
    fn default() -> Self {
        Self::new()
    }
}

impl NamedService for StoreServer {
    const NAME: &'static str = "demo.Store";
}

impl<B> Service<http::Request<B>> for StoreServer
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != GET_PATH {
            return Box::pin(async { Ok(Status::unimplemented("no such method").into_http()) });
        }
        let store = self.clone();
        Box::pin(async move {
            let method = tower::service_fn(move |request: tonic::Request<GetRequest>| {
                let reply = store.get(request).map(tonic::Response::new);
                async move { reply }
            });
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<GetReply, GetRequest>::default());
            Ok(grpc.unary(method, req).await)
        })
    }
}

/// Serves `demo.Store` on `listener` behind the auth layer and the scope guard, until
/// `shutdown` completes.
///
/// # Errors
///
/// When the server fails.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    Server::builder()
        // Outermost first: authenticate, then check the scope.
        .layer(AuthLayer::new(authenticator()?).realm("store"))
        .layer(RequireScopeLayer::of::<ReadData>())
        .add_service(StoreServer::new())
        .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
        .await?;
    Ok(())
}

/// A client credential.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// No credential at all.
    None,
    /// `authorization: Bearer <token>`.
    Bearer(&'a str),
    /// `x-api-key: <key>`.
    ApiKey(&'a str),
}

/// Calls `demo.Store/Get` for `key` with `credential`, over `channel`.
///
/// # Errors
///
/// The call's gRPC status when it fails.
pub async fn get(
    channel: Channel,
    credential: Credential<'_>,
    key: &str,
) -> Result<GetReply, Status> {
    let mut request = tonic::Request::new(GetRequest {
        key: key.to_owned(),
    });
    let metadata = request.metadata_mut();
    match credential {
        Credential::None => {}
        Credential::Bearer(token) => {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| Status::invalid_argument("token is not a valid header value"))?;
            metadata.insert("authorization", value);
        }
        Credential::ApiKey(key) => {
            let value = key
                .parse()
                .map_err(|_| Status::invalid_argument("key is not a valid header value"))?;
            metadata.insert("x-api-key", value);
        }
    }
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::new(Code::Unavailable, e.to_string()))?;
    let codec = ProstCodec::<GetRequest, GetReply>::default();
    grpc.unary(request, PathAndQuery::from_static(GET_PATH), codec)
        .await
        .map(tonic::Response::into_inner)
}

/// Connects a channel to the server at `addr`.
///
/// # Errors
///
/// When the connection fails.
pub async fn connect(addr: SocketAddr) -> Result<Channel, tonic::transport::Error> {
    Channel::from_shared(format!("http://{addr}"))
        .expect("a socket address makes a valid URI")
        .connect()
        .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, async {
        let _ = stopped.await;
    }));
    println!("demo.Store listening on {addr}");

    let channel = connect(addr).await?;
    let guest = mint("bob", "profile")?;
    let reader = mint("alice", "profile data:read")?;
    for (label, credential) in [
        ("no token", Credential::None),
        ("token without data:read", Credential::Bearer(&guest)),
        ("token with data:read", Credential::Bearer(&reader)),
        ("API key with data:read", Credential::ApiKey("backup-key")),
    ] {
        match get(channel.clone(), credential, "greeting").await {
            Ok(reply) => println!("{label}: ok, {:?} for {}", reply.value, reply.caller),
            Err(status) => println!("{label}: {:?} ({})", status.code(), status.message()),
        }
    }

    let _ = stop.send(());
    server.await??;
    Ok(())
}

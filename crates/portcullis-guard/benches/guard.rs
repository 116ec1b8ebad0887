//! What a guard costs: the role/scope check alone (exact, through a hierarchy) and a
//! guard layer around a trivial tower service, beside the same service bare, in one run.

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::{
    convert::Infallible,
    future::Future,
    hint::black_box,
    pin::pin,
    task::{Context, Poll, Waker},
};

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use portcullis_core::{AuthContext, Principal, PrincipalKind};
use portcullis_guard::{
    AnyOf, RequireRole, RequireRoleLayer, RequireRoleOrScope, RequireScope, RequireScopeLayer,
    RoleHierarchy, roles, scopes,
};
use tower::{Layer, Service, service_fn};

roles! { pub Admin = "admin", pub Editor = "editor", pub Viewer = "viewer" }
scopes! { pub ReadData = "data:read", pub AdminScope = "admin:all" }

fn principal() -> Principal {
    Principal::builder("alice", PrincipalKind::User)
        .roles(["staff", "admin"])
        .scopes(["profile", "email", "data:read"])
        .build()
}

fn request(principal: &Principal, context: &AuthContext) -> Request<()> {
    let mut req = Request::new(());
    principal.insert_into(req.extensions_mut());
    req.extensions_mut().insert(context.clone());
    req
}

fn checks(c: &mut Criterion) {
    let p = principal();
    let hierarchy = RoleHierarchy::new()
        .grant("admin", ["editor"])
        .grant("editor", ["viewer"]);
    let mut g = c.benchmark_group("check");
    g.bench_function("principal_clone_floor", |b| b.iter(|| black_box(p.clone())));
    let map: std::collections::HashMap<Box<str>, u8> = [("viewer".into(), 1), ("editor".into(), 2)]
        .into_iter()
        .collect();
    g.bench_function("string_hash_lookup_floor", |b| {
        b.iter(|| map.get(black_box("viewer")).copied())
    });
    g.bench_function("scope", |b| {
        b.iter(|| RequireScope::<ReadData>::check(black_box(p.clone())).is_ok())
    });
    g.bench_function("role_exact", |b| {
        b.iter(|| RequireRole::<Admin>::check(black_box(p.clone()), None).is_ok())
    });
    g.bench_function("role_any_of_2", |b| {
        b.iter(|| RequireRole::<AnyOf<(Editor, Admin)>>::check(black_box(p.clone()), None).is_ok())
    });
    g.bench_function("role_via_hierarchy_2_hops", |b| {
        b.iter(|| RequireRole::<Viewer>::check(black_box(p.clone()), Some(&hierarchy)).is_ok())
    });
    g.bench_function("role_or_scope_by_role", |b| {
        b.iter(|| {
            RequireRoleOrScope::<Admin, AdminScope>::check(black_box(p.clone()), None).is_ok()
        })
    });
    g.finish();
}

/// Calls a service that is always ready and answers without waiting, polling its
/// future once: no runtime in the measurement.
fn call_now<S>(svc: &mut S, req: Request<()>) -> S::Response
where
    S: Service<Request<()>>,
    S::Error: std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    assert!(svc.poll_ready(&mut cx).is_ready());
    let mut future = pin!(svc.call(req));
    match future.as_mut().poll(&mut cx) {
        Poll::Ready(response) => response.unwrap(),
        Poll::Pending => unreachable!("the benchmark services never wait"),
    }
}

fn layers(c: &mut Criterion) {
    let p = principal();
    let context = AuthContext::new("api");
    let inner =
        service_fn(|_req: Request<()>| async { Ok::<_, Infallible>(Response::new(Bytes::new())) });
    let mut bare = inner;
    let mut scope_guarded = RequireScopeLayer::any(["data:read"]).layer(inner);
    let mut role_guarded = RequireRoleLayer::any(["viewer"])
        .with_hierarchy(
            RoleHierarchy::new()
                .grant("admin", ["editor"])
                .grant("editor", ["viewer"]),
        )
        .layer(inner);

    let mut g = c.benchmark_group("layer");
    // Alternate bare and guarded in one run so the ratio is fair on a noisy machine.
    // Each iteration builds the request head (principal and auth context in the
    // extensions), as the auth layer would have.
    for round in 0..3 {
        g.bench_function(format!("bare/{round}"), |b| {
            b.iter(|| call_now(&mut bare, request(&p, &context)))
        });
        g.bench_function(format!("scope_guard/{round}"), |b| {
            b.iter(|| call_now(&mut scope_guarded, request(&p, &context)))
        });
        g.bench_function(format!("role_guard_hierarchy/{round}"), |b| {
            b.iter(|| call_now(&mut role_guarded, request(&p, &context)))
        });
    }
    g.finish();
}

criterion_group!(benches, checks, layers);
criterion_main!(benches);

//! `portcullis::serve`: hostile clients meet timeouts and a connection cap, and
//! ordinary requests keep being answered.

use std::{
    future::IntoFuture,
    net::SocketAddr,
    time::{Duration, Instant},
};

use axum::{Router, body::Bytes, extract::Request, routing::get, routing::post};
use portcullis::{PeerAddr, serve::serve};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
    task::JoinHandle,
};

fn app() -> Router {
    Router::new()
        .route(
            "/",
            get(|request: Request| async move {
                match request.extensions().get::<PeerAddr>() {
                    Some(PeerAddr(peer)) => peer.to_string(),
                    None => "no peer".to_owned(),
                }
            }),
        )
        .route(
            "/echo",
            post(|body: Bytes| async move { body.len().to_string() }),
        )
}

struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

async fn start(
    configure: impl FnOnce(portcullis::serve::Serve<Router>) -> portcullis::serve::Serve<Router>,
) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = configure(serve(listener, app())).with_graceful_shutdown(async {
        let _ = stopped.await;
    });
    let task = tokio::spawn(server.into_future());
    Running {
        addr,
        stop: Some(stop),
        task,
    }
}

/// One request on a fresh connection; the whole response as text.
async fn get_root(addr: SocketAddr) -> (String, SocketAddr) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let local = stream.local_addr().unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    (response, local)
}

/// Reads until the server closes the connection; how long that took.
async fn until_closed(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_half_open_connections_do_not_stop_a_normal_request() {
    let server = start(|s| s).await;
    // 8,000 clients that send half a request line and then nothing (in one process
    // with the server: 16,000 descriptors).
    let mut held = Vec::new();
    for _ in 0..8_000 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(b"GET / HT").await.unwrap();
        held.push(stream);
    }
    let started = Instant::now();
    let (response, local) = tokio::time::timeout(Duration::from_secs(5), get_root(server.addr))
        .await
        .expect("answered");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "took {:?}",
        started.elapsed()
    );
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.ends_with(&local.to_string()),
        "the peer address: {response}"
    );
    drop(held);
}

#[tokio::test]
async fn a_head_that_trickles_in_is_cut_off_at_the_head_timeout() {
    let server = start(|s| s.head_timeout(Duration::from_millis(300))).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let trickle = async {
        for byte in b"GET / HTTP/1.1\r\nhost: x\r\n" {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), trickle).await;
    let mut rest = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(1), stream.read(&mut rest)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the connection is closed: {read:?}"
    );
    // An idle keep-alive connection is closed by the same timeout.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let took = until_closed(&mut idle).await;
    assert!(took < Duration::from_secs(2), "idle for {took:?}");
}

#[tokio::test]
async fn a_body_that_stalls_is_refused_at_the_body_timeout() {
    let server = start(|s| s.body_timeout(Duration::from_millis(300))).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n0123456789")
        .await
        .unwrap();
    let started = Instant::now();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut response)).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 4"), "{response}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // A body that arrives in time is read whole.
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\nconnection: close\r\n\r\nabc",
        )
        .await
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(
        response.starts_with("HTTP/1.1 200") && response.ends_with('3'),
        "{response}"
    );
}

#[tokio::test]
async fn past_the_connection_cap_new_connections_wait_for_a_free_slot() {
    let server = start(|s| s.max_connections(2)).await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    let _second = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let third = tokio::spawn(get_root(server.addr));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!third.is_finished(), "served past the cap");
    first.shutdown().await.unwrap();
    drop(first);
    let (response, _) = tokio::time::timeout(Duration::from_secs(3), third)
        .await
        .expect("served once a slot is free")
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
}

#[tokio::test]
async fn graceful_shutdown_stops_accepting_and_returns() {
    let mut server = start(|s| s).await;
    let (response, _) = get_root(server.addr).await;
    assert!(response.starts_with("HTTP/1.1 200"));
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(3), server.task)
        .await
        .expect("returned")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "still accepting"
    );
}

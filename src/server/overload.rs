//! What a client gets when the daemon already serves `server.max_connections` connections: a
//! quick `503 Service Unavailable` with `Retry-After`, instead of a silently closed socket.
//!
//! Answering costs a TLS handshake, so it is bounded too: at most [`MAX_REFUSING`] refusals
//! run at once, each limited to [`REFUSAL_TIME`] overall; past that a new connection is closed
//! at once, which is the cheapest refusal there is. Nothing here touches the application: an
//! over-limit client never reaches the registration authority.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// Refusals answered at once; beyond that, over-limit connections are closed unanswered.
pub(crate) const MAX_REFUSING: usize = 256;

/// The whole budget of one refusal: handshake, reading the request head, writing the answer.
const REFUSAL_TIME: Duration = Duration::from_secs(2);

/// How long to wait for the request head before answering anyway.
const HEAD_WAIT: Duration = Duration::from_millis(200);

/// Seconds a refused client is asked to wait.
const RETRY_AFTER_SECS: u32 = 5;

/// The refusal permits, shared by the listener.
pub(crate) fn refusal_slots() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_REFUSING))
}

/// Answers an over-limit connection with 503 (in the background), or closes it at once when
/// too many refusals are already under way.
pub(crate) fn refuse(
    tcp: TcpStream,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
    slots: &Arc<Semaphore>,
) {
    let Ok(permit) = slots.clone().try_acquire_owned() else {
        tracing::debug!(%addr, "connection limit reached and refusals saturated; closing");
        drop(tcp);
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        if tokio::time::timeout(REFUSAL_TIME, answer_503(tcp, acceptor))
            .await
            .is_err()
        {
            tracing::debug!(%addr, "over-limit connection too slow to refuse; closed");
        }
    });
}

async fn answer_503(tcp: TcpStream, acceptor: TlsAcceptor) {
    let _ = tcp.set_nodelay(true);
    let Ok(mut tls) = acceptor.accept(tcp).await else {
        return;
    };
    // Read the request head (bounded) so that closing does not reset a connection with unread
    // data, which could make the client miss the answer.
    let mut head = [0u8; 4096];
    let mut seen = Vec::new();
    let _ = tokio::time::timeout(HEAD_WAIT, async {
        while let Ok(n) = tls.read(&mut head).await {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&head[..n]);
            if seen.windows(4).any(|w| w == b"\r\n\r\n") || seen.len() > 16 * 1024 {
                break;
            }
        }
    })
    .await;
    let body = "estca is serving as many connections as it may; retry in a few seconds\n";
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
         retry-after: {RETRY_AFTER_SECS}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.write_all(answer.as_bytes()).await;
    let _ = tls.shutdown().await;
}

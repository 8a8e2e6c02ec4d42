//! The first-byte deadline (`server.first_byte_timeout_secs`): a connection that has sent
//! nothing that long after it was accepted is closed.
//!
//! A real client sends its TLS ClientHello, or its request line, as soon as it has connected.
//! A connection that sends nothing would otherwise hold one of its listener's (and its
//! source's) places for the whole TLS handshake timeout or header timeout, which is what an
//! idle flood relies on. Once the first byte has arrived, the handshake and header timeouts
//! bound the rest as before.

use std::time::Duration;

use tokio::net::{TcpStream, UnixStream};

/// Waits until `tcp` has data to read, at most `deadline`; `false` when the peer sent
/// nothing in time or closed without sending anything.
pub(crate) async fn tcp(tcp: &TcpStream, deadline: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(deadline, tcp.peek(&mut byte)).await,
        Ok(Ok(n)) if n > 0
    )
}

/// Waits until `stream` (an admin-socket connection) is readable, at most `deadline`;
/// `false` when nothing arrived in time. A close also makes it readable: the HTTP server then
/// sees the end at once.
pub(crate) async fn unix(stream: &UnixStream, deadline: Duration) -> bool {
    matches!(
        tokio::time::timeout(deadline, stream.readable()).await,
        Ok(Ok(()))
    )
}

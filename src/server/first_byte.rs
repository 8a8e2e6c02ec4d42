//! The first-byte deadline (`server.first_byte_timeout_secs`): a connection that has sent
//! nothing that long after it was accepted is closed.
//!
//! A real client sends its TLS ClientHello, or its request line, as soon as it has connected.
//! A connection that sends nothing would otherwise hold one of its listener's (and its
//! source's) places for the whole TLS handshake timeout or header timeout, which is what an
//! idle flood relies on. Once the first byte has arrived, the handshake and header timeouts
//! bound the rest as before.

use std::mem::MaybeUninit;
use std::time::Duration;

use tokio::io::Interest;

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

/// Waits until `stream` (an admin-socket connection) has data to read, at most `deadline`;
/// `false` when nothing arrived in time or the peer closed without sending anything.
///
/// Tokio has no `peek` for Unix streams, and its readiness alone may be spurious (it was, on
/// accepted admin connections), so the byte is peeked through socket2 with `MSG_PEEK`, retried
/// on every readiness until it is really there.
pub(crate) async fn unix(stream: &UnixStream, deadline: Duration) -> bool {
    let peek = stream.async_io(Interest::READABLE, || {
        let mut byte = [MaybeUninit::<u8>::uninit(); 1];
        socket2::SockRef::from(stream).peek(&mut byte)
    });
    matches!(tokio::time::timeout(deadline, peek).await, Ok(Ok(n)) if n > 0)
}

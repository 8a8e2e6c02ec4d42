//! The write deadline (`server.write_timeout_secs`): a connection whose peer takes none of
//! the answer's bytes for that long is closed.
//!
//! hyper bounds reading a request's headers, and the request timeout bounds the handler, but
//! nothing bounds writing the answer: a client that asks for a large answer (the enrollment
//! page's script, a large CRL) and then never reads, with a tiny TCP receive window, would
//! block the server's write forever and hold its place in the listener's budget and its
//! source's share for good; a few addresses would then fill `server.max_connections`.
//!
//! [`WriteDeadline`] wraps a connection's socket (beneath TLS, so that what counts is bytes
//! the kernel accepted, not plaintext rustls buffered). A write, flush or shutdown that cannot
//! proceed arms a timer; any write that then makes progress disarms it, so a connection that
//! keeps taking its answers (a keep-alive client busy for minutes) is never cut. Once the
//! timer has run out with the write still stuck, the write fails with
//! [`std::io::ErrorKind::TimedOut`]: hyper's connection future ends with that error, the
//! connection task returns, and its budget permit is dropped. The event is logged once.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// The error a stalled write fails with; recognisable in the error hyper returns through
/// [`is_write_stall`], so that the connection's end is logged once, here.
#[derive(Debug)]
pub(crate) struct WriteStalled {
    timeout: Duration,
}

impl fmt::Display for WriteStalled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the peer took none of the answer's bytes for {} s",
            self.timeout.as_secs()
        )
    }
}

impl std::error::Error for WriteStalled {}

/// Whether `error` (or one of its sources) is a [`WriteStalled`] of this module.
pub(crate) fn is_write_stall(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<WriteStalled>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.is::<WriteStalled>()) {
                return true;
            }
        }
        next = e.source();
    }
    false
}

/// A connection's IO whose writes fail once they have made no progress for `timeout`.
/// Reads pass through untouched (their deadlines are the first-byte, handshake and header
/// timeouts).
pub(crate) struct WriteDeadline<IO> {
    io: IO,
    timeout: Duration,
    /// Armed while a write is stuck; allocated at the first stall only, then reset.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    /// For the one log line: the listener's name and the peer (none on the admin socket).
    listener: &'static str,
    peer: Option<SocketAddr>,
}

impl<IO> WriteDeadline<IO> {
    /// Wraps `io` of a connection from `peer` on `listener`, with writes bounded by `timeout`
    /// without progress.
    pub(crate) fn new(
        io: IO,
        timeout: Duration,
        listener: &'static str,
        peer: Option<SocketAddr>,
    ) -> Self {
        Self {
            io,
            timeout,
            timer: None,
            armed: false,
            listener,
            peer,
        }
    }

    /// Bookkeeping after the inner IO answered a write-side poll: progress disarms the timer;
    /// a stall arms it (or checks it, when armed) and fails once it has run out.
    fn track<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.armed = false;
            return polled;
        }
        if !self.armed {
            let deadline = Instant::now() + self.timeout;
            match &mut self.timer {
                Some(timer) => timer.as_mut().reset(deadline),
                None => self.timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.armed = true;
        }
        let Some(timer) = self.timer.as_mut() else {
            return Poll::Pending;
        };
        // Polling the timer registers this task to be woken when it runs out, so the stuck
        // write is looked at again then even if the socket never becomes writable.
        ready!(timer.as_mut().poll(cx));
        self.armed = false;
        match self.peer {
            Some(peer) => tracing::info!(
                listener = self.listener,
                %peer,
                timeout_secs = self.timeout.as_secs(),
                "the client took none of the answer's bytes within the write timeout; connection closed"
            ),
            None => tracing::info!(
                listener = self.listener,
                timeout_secs = self.timeout.as_secs(),
                "the client took none of the answer's bytes within the write timeout; connection closed"
            ),
        }
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            WriteStalled {
                timeout: self.timeout,
            },
        )))
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for WriteDeadline<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write(cx, buf);
        this.track(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.track(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_flush(cx);
        this.track(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.io).poll_shutdown(cx);
        this.track(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A peer that never reads: a duplex pipe of 1 KiB whose other end is kept, not read.
    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_takes_fails_after_the_timeout() {
        let (near, _far) = tokio::io::duplex(1024);
        let mut io = WriteDeadline::new(near, Duration::from_secs(30), "test", None);
        let started = Instant::now();
        let err = io
            .write_all(&[0u8; 64 * 1024])
            .await
            .expect_err("the write must fail");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(is_write_stall(&err));
        assert_eq!(started.elapsed(), Duration::from_secs(30));
    }

    /// A peer that reads slowly but steadily, each chunk within the timeout, is never cut.
    #[tokio::test(start_paused = true)]
    async fn a_slow_but_steady_reader_is_served_in_full() {
        use tokio::io::AsyncReadExt;
        let (near, mut far) = tokio::io::duplex(1024);
        let reader = tokio::spawn(async move {
            let mut got = 0usize;
            let mut buf = [0u8; 1024];
            loop {
                tokio::time::sleep(Duration::from_secs(20)).await;
                match far.read(&mut buf).await {
                    Ok(0) | Err(_) => return got,
                    Ok(n) => got += n,
                }
            }
        });
        let mut io = WriteDeadline::new(near, Duration::from_secs(30), "test", None);
        io.write_all(&[0u8; 8 * 1024])
            .await
            .expect("steady progress");
        io.shutdown().await.expect("shutdown");
        drop(io);
        assert_eq!(reader.await.expect("reader"), 8 * 1024);
    }
}

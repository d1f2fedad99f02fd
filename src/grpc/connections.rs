//! The connections tierd accepts, each within its bounds: how many in
//! all, how many from one peer address, and how long a new one may stay
//! silent.
//!
//! Without them, 20,000 TCP connections that never sent a byte held
//! 20,000 file descriptors; the process then hit its descriptor limit, its
//! accept loop spun at most of a core on `EMFILE`, and new tills got
//! DEADLINE_EXCEEDED. Here:
//!
//! - a connection over [`ServeLimits::max_connections`] in all, or
//!   over [`ServeLimits::max_connections_per_peer`] from its address,
//!   is closed as soon as it is accepted;
//! - a connection that sends nothing within
//!   [`ServeLimits::handshake_timeout`] (no TLS hello, no HTTP/2
//!   preface) is closed;
//! - when the process is out of descriptors, accepting pauses for
//!   [`FD_BACKOFF`] instead of spinning, and the pause is logged.
//!
//! HTTP/2 keepalive pings (set in [`super::serve`]) close connections
//! whose peer has gone away without a word.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::Duration,
};

use futures::Stream;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::{TcpListener, TcpStream},
    time::Sleep,
};
use tonic::transport::server::{Connected, TcpConnectInfo};

use super::ServeLimits;

/// How long accepting pauses when the process has no file descriptor to
/// give a new connection.
pub const FD_BACKOFF: Duration = Duration::from_millis(100);

/// Who is connected: a count per peer address, and the total.
#[derive(Debug, Default)]
struct Tally {
    per_peer: HashMap<IpAddr, usize>,
    total: usize,
}

/// A place among the open connections, given back when dropped.
#[derive(Debug)]
struct Place {
    tally: Arc<Mutex<Tally>>,
    peer: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        tally.total = tally.total.saturating_sub(1);
        if let Some(count) = tally.per_peer.get_mut(&self.peer) {
            *count -= 1;
            if *count == 0 {
                tally.per_peer.remove(&self.peer);
            }
        }
    }
}

/// The connections `listener` accepts, within `limits`.
pub fn accept(
    listener: TcpListener,
    limits: ServeLimits,
) -> impl Stream<Item = io::Result<Connection>> {
    let acceptor = Acceptor {
        listener,
        limits,
        tally: Arc::default(),
    };
    futures::stream::unfold(acceptor, |acceptor| async move {
        let connection = acceptor.next().await;
        Some((Ok(connection), acceptor))
    })
}

struct Acceptor {
    listener: TcpListener,
    limits: ServeLimits,
    tally: Arc<Mutex<Tally>>,
}

impl Acceptor {
    /// The next connection within the limits; those over them are closed.
    async fn next(&self) -> Connection {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    if let Some(connection) = self.admit(stream, peer) {
                        return connection;
                    }
                }
                Err(err) if out_of_descriptors(&err) => {
                    tracing::warn!(error = %err, pause = ?FD_BACKOFF, "out of file descriptors: accepting paused");
                    tokio::time::sleep(FD_BACKOFF).await;
                }
                Err(err) => tracing::debug!(error = %err, "accepting a connection failed"),
            }
        }
    }

    /// `stream` as a connection, or `None` (and closed) when it is over a
    /// limit.
    fn admit(&self, stream: TcpStream, peer: SocketAddr) -> Option<Connection> {
        let place = {
            let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
            let from_peer = tally.per_peer.get(&peer.ip()).copied().unwrap_or(0);
            if tally.total >= self.limits.max_connections
                || from_peer >= self.limits.max_connections_per_peer
            {
                tracing::debug!(%peer, from_peer, total = tally.total, "connection over the limits: closed");
                metrics::counter!(crate::telemetry::CONNECTIONS_REFUSED).increment(1);
                return None;
            }
            tally.total += 1;
            *tally.per_peer.entry(peer.ip()).or_default() += 1;
            Place {
                tally: Arc::clone(&self.tally),
                peer: peer.ip(),
            }
        };
        // An answer is a few small HTTP/2 frames: with Nagle's algorithm on,
        // each waited for the client's delayed ACK (40 ms on Linux).
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "TCP_NODELAY not set");
        }
        Some(Connection {
            stream,
            handshake: Some(Box::pin(tokio::time::sleep(self.limits.handshake_timeout))),
            _place: place,
        })
    }
}

/// Whether `err` says the process (or the system) has no file descriptor
/// left: `EMFILE` or `ENFILE`.
fn out_of_descriptors(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::EMFILE | libc::ENFILE))
}

/// An accepted connection: its place among the open ones, and the time
/// left to say its first bytes.
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    /// Running until the first bytes arrive; `None` after.
    handshake: Option<Pin<Box<Sleep>>>,
    _place: Place,
}

impl Connected for Connection {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.stream.connect_info()
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        let Some(handshake) = self.handshake.as_mut() else {
            return read;
        };
        match read {
            Poll::Ready(Ok(())) if buf.filled().len() > before => {
                self.handshake = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending if handshake.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection sent nothing within the handshake timeout",
                )))
            }
            other => other,
        }
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

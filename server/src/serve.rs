//! Serving connections with hyper directly (axum::serve has no header-read or idle timeouts):
//!
//! - **Header-read timeout** (`header_read_timeout_secs`): hyper's own HTTP/1 timer, on a Tokio
//!   timer. A connection that has not sent a whole request head in time is closed; since hyper
//!   1.4 the timer also runs while a kept-alive connection waits for its next request.
//! - **Idle timeout** (`keep_alive_idle_secs`): a connection over which no byte has moved
//!   either way for this long is shut down gracefully (hyper finishes a response in progress,
//!   then closes). This also covers what the header timer cannot see: a connection that sends
//!   nothing, or a partial HTTP/2 preface, before the protocol is known, and idle HTTP/2.
//! - **Connection cap** (`max_connections`): a semaphore; a connection over the cap is refused
//!   at once (a plain `503` with `Retry-After: 1`, then closed) rather than queued, so that a
//!   flood cannot pile up waiting sockets.
//! - **Shutdown**: on the signal, no new connection is accepted, every open one is shut down
//!   gracefully (idle ones close at once, requests in flight finish), and event streams
//!   (`text/event-stream` answers) end at once, cleanly, so that browsers reconnect to another
//!   instance. Whatever is still open after `DRAIN` (a request still running, a client sending
//!   its request slowly) is cut: its connection is dropped, which cancels its handler, and a
//!   handler's open transaction rolls back, so nothing half-written stays (a reception and its
//!   outbox row are one transaction). The whole stop, database closed included, stays within
//!   10 seconds (`crate::SHUTDOWN_BOUND`).
//!
//! Every request carries `ConnectInfo<SocketAddr>` (the peer), as with `axum::serve`.

use std::{
    future::Future,
    io,
    pin::{Pin, pin},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use axum::{Router, extract::ConnectInfo};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf},
    net::{TcpListener, TcpStream},
    sync::{Semaphore, watch},
};
use tower::ServiceExt;

use crate::config::Floods;

/// How long shutdown waits for open connections before it cuts them.
pub const DRAIN: Duration = Duration::from_secs(8);
/// How long cut connections are given to let go of their resources.
const CUT: Duration = Duration::from_millis(500);
/// Refused connections being answered at once, at most; beyond that they are dropped unanswered.
const REFUSALS: usize = 64;
/// How long a refused connection is given to take its answer.
const REFUSAL_TIME: Duration = Duration::from_secs(2);
/// Concurrent HTTP/2 streams per connection.
const H2_STREAMS: u32 = 100;

/// The answer to a connection over the cap: short, in Japanese and English, and closed.
const BUSY: &[u8] = "HTTP/1.1 503 Service Unavailable\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Retry-After: 1\r\n\
Connection: close\r\n\
Cache-Control: no-store\r\n\
X-Content-Type-Options: nosniff\r\n\
\r\n\
混み合っています。少し待ってから、もう一度お試しください。\n\
The server is busy. Please wait a moment and try again.\n"
    .as_bytes();

/// Serves `router` on `listener` until `shutdown` completes; see the module's notes.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    floods: &Floods,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(floods.header_read_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(H2_STREAMS);
    let builder = Arc::new(builder);
    let max = floods.max_connections.max(1);
    let connections = Arc::new(Semaphore::new(max));
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let idle = floods.keep_alive_idle;
    let (stop_tx, stop_rx) = watch::channel(false);
    let (cut_tx, cut_rx) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a connection reset before accept: keep serving,
                    // after a pause when the process itself is short of something.
                    if !matches!(
                        error.kind(),
                        io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::Interrupted
                    ) {
                        tracing::error!(%error, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = connections.clone().try_acquire_owned() else {
            refuse(stream, &refusals);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let io = TokioIo::new(Tracked {
            stream,
            activity: activity.clone(),
        });
        let router = router.clone();
        let streams_stop = stop_rx.clone();
        let service = hyper::service::service_fn(move |request: http::Request<_>| {
            let http1 = request.version() <= http::Version::HTTP_11;
            let read_whole = Arc::new(AtomicBool::new(false));
            let mut request =
                request.map(|body| axum::body::Body::new(Watched::new(body, read_whole.clone())));
            request.extensions_mut().insert(ConnectInfo(peer));
            let answer = router.clone().oneshot(request);
            let stop = streams_stop.clone();
            async move {
                answer.await.map(|response| {
                    let response = close_if_body_unread(response, http1, &read_whole);
                    end_streams_on_stop(response, stop)
                })
            }
        });
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        let mut cut = cut_rx.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let connection = builder.serve_connection_with_upgrades(io, service);
            let mut connection = pin!(connection);
            let mut closing = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%error, "connection ended with an error");
                        }
                        break;
                    }
                    () = activity.idle_for(idle), if !closing => {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    _ = stop.wait_for(|stop| *stop), if !closing => {
                        connection.as_mut().graceful_shutdown();
                        closing = true;
                    }
                    // The drain time is over: drop the connection, whatever it was doing.
                    _ = cut.wait_for(|cut| *cut) => break,
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN, connections.acquire_many(all))
        .await
        .is_err()
    {
        let open = max.saturating_sub(connections.available_permits());
        tracing::warn!(
            open,
            "shutdown: connections still open after the drain time; cutting them"
        );
        let _ = cut_tx.send(true);
        let _ = tokio::time::timeout(CUT, connections.acquire_many(all)).await;
    }
    Ok(())
}

/// An event stream's body that ends when `stop` turns true, so that a shutdown does not wait
/// for streams that never end by themselves; other answers pass as they are.
fn end_streams_on_stop(
    response: axum::response::Response,
    mut stop: watch::Receiver<bool>,
) -> axum::response::Response {
    let is_stream = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if !is_stream {
        return response;
    }
    let (parts, body) = response.into_parts();
    let stopped = Box::pin(async move {
        let _ = stop.wait_for(|stop| *stop).await;
    });
    let data = futures_util::StreamExt::take_until(body.into_data_stream(), stopped);
    axum::response::Response::from_parts(parts, axum::body::Body::from_stream(data))
}

/// A request body that records whether it was read to its end.
struct Watched {
    inner: hyper::body::Incoming,
    read_whole: Arc<AtomicBool>,
}

impl Watched {
    fn new(inner: hyper::body::Incoming, read_whole: Arc<AtomicBool>) -> Self {
        read_whole.store(http_body::Body::is_end_stream(&inner), Ordering::Relaxed);
        Watched { inner, read_whole }
    }
}

impl http_body::Body for Watched {
    type Data = axum::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let frame = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(frame, Poll::Ready(None)) {
            self.read_whole.store(true, Ordering::Relaxed);
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// An HTTP/1 answer given before its request's body was read to the end (a 413 decided on
/// `Content-Length`, a refusal before the upload was looked at, a body cut by an error) says
/// `Connection: close`. hyper closes such a connection after the answer anyway, as it cannot
/// find where the next request starts; without the header a client pools the connection and
/// its next request on it fails ("connection closed before message completed").
fn close_if_body_unread(
    mut response: axum::response::Response,
    http1: bool,
    read_whole: &AtomicBool,
) -> axum::response::Response {
    if http1 && !read_whole.load(Ordering::Relaxed) {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

/// Answers a connection over the cap with 503 and closes it, reading what the client sent so
/// that closing does not reset the connection before the answer is read. At most `REFUSALS`
/// at once, each for at most `REFUSAL_TIME`; past that the connection is dropped unanswered.
fn refuse(stream: TcpStream, refusals: &Arc<Semaphore>) {
    tracing::debug!("connection refused: at the connection cap");
    let Ok(permit) = refusals.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let mut stream = stream;
        let _ = tokio::time::timeout(REFUSAL_TIME, async {
            stream.write_all(BUSY).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 4096];
            let mut read = 0usize;
            while read < 64 * 1024 {
                match stream.read(&mut sink).await? {
                    0 => break,
                    n => read += n,
                }
            }
            io::Result::Ok(())
        })
        .await;
    });
}

/// When a byte last moved over a connection, in milliseconds since it was accepted.
#[derive(Clone)]
struct Activity {
    accepted: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            accepted: Instant::now(),
            last_ms: Arc::new(AtomicU64::new(0)),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.accepted.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn touch(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Completes once nothing has moved for `limit`.
    async fn idle_for(&self, limit: Duration) {
        let limit_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        loop {
            let since = self
                .now_ms()
                .saturating_sub(self.last_ms.load(Ordering::Relaxed));
            if since >= limit_ms {
                return;
            }
            tokio::time::sleep(Duration::from_millis(limit_ms - since)).await;
        }
    }
}

/// A TCP stream that records when bytes move.
struct Tracked {
    stream: TcpStream,
    activity: Activity,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let result = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

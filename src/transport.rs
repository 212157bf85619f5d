//! The HTTP server loop: accepts TCP connections and serves them with hyper, with the
//! limits a server facing the open network needs and poem's `Server` does not set:
//! - a header-read deadline (`[server] header_read_timeout`, default 10 s): a request head
//!   must arrive whole within it, and an idle keep-alive connection is closed when no new
//!   request starts within it (slowloris). One deadline per connection, armed while it has
//!   no request in flight ([`Activity`]), instead of hyper's own, which reads the clock,
//!   allocates a timer and registers it in tokio's timer wheel for every request;
//! - a cap on concurrent connections per client address (`[server]
//!   max_connections_per_ip`): more are closed at once;
//! - graceful shutdown: stop accepting, let requests in flight finish (up to a grace
//!   period), then close;
//! - HTTPS (`[server] protocol = https`): the TLS handshake, after the per-address check
//!   and within the header-read deadline, with the certificate current at that moment
//!   ([`crate::tls::Certificates`]); the TLS stream is then served like a plain one.
//!
//! The request-body deadline (`[server] read_timeout`) is a middleware
//! ([`crate::api::middleware::body_deadline`]): it needs the request, not the socket.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use poem::http::uri::Scheme;
use poem::web::{LocalAddr, RemoteAddr};
use poem::{Endpoint, Response};

/// The body type poem's responses convert to for hyper.
type HyperBody = http_body_util::combinators::BoxBody<bytes::Bytes, std::io::Error>;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::domain::time::coarse_monotonic_ms;
use crate::tls::Certificates;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// What the loop enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_connections_per_ip: usize,
    /// How long requests in flight may run after shutdown begins.
    pub shutdown_grace: Duration,
}

/// Open connections per client address; a slot frees itself when dropped.
#[derive(Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

struct Slot {
    table: Arc<PerAddress>,
    ip: IpAddr,
}

impl PerAddress {
    fn try_take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut open = self.open.lock();
        let n = open.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock();
        if let Some(n) = open.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `ep` on `listener` (over TLS when `tls` is given) until `shutdown` resolves,
/// then drains. `ep` is called directly, not through a boxed endpoint: one heap
/// allocation less per request (hyper keeps each request's future in its connection's
/// slot; what that move costs is the future's size, kept small in `api::observe`).
pub async fn serve<E>(
    listener: TcpListener,
    ep: E,
    limits: Limits,
    tls: Option<Arc<Certificates>>,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    E: Endpoint<Output = Response> + 'static,
{
    let ep = Arc::new(ep);
    let local = listener.local_addr()?;
    let table = Arc::new(PerAddress::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(slot) = table.try_take(peer.ip(), limits.max_connections_per_ip) else {
                    tracing::debug!(peer = %peer, "connection refused: too many from this address");
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let conn = Conn { local, peer, ep: ep.clone(), limits, stop: stop_rx.clone(), _slot: slot };
                match &tls {
                    None => conns.spawn(conn.serve(stream, Scheme::HTTP)),
                    Some(certs) => conns.spawn(conn.handshake(stream, certs.acceptor())),
                };
            }
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("requests still running after the shutdown grace period: closing");
        conns.shutdown().await;
    }
    Ok(())
}

/// A connection's requests in flight, and since when it has had none: its header-read
/// deadline is measured from that moment (the end of the last response, or the start of
/// the connection), read on the coarse monotonic clock (every response moves it; a tick
/// is nothing against the timeout's seconds).
struct Activity {
    in_flight: AtomicUsize,
    /// [`coarse_monotonic_ms`] when the last request in flight ended.
    idle_since: AtomicU64,
    /// HTTP/2 (its idle connections are kept alive by pings, as hyper does): no deadline.
    multiplexed: AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(coarse_monotonic_ms()),
            multiplexed: AtomicBool::new(false),
        }
    }

    /// A request starts; it ends when the returned guard is dropped (with its response's
    /// body, once written or abandoned).
    fn start(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    /// When an idle connection is to be closed; `None` while a request is in flight (or
    /// for HTTP/2).
    fn deadline(&self, timeout: Duration) -> Option<tokio::time::Instant> {
        if self.in_flight.load(Ordering::SeqCst) > 0 || self.multiplexed.load(Ordering::Relaxed) {
            return None;
        }
        let idle_for = coarse_monotonic_ms().saturating_sub(self.idle_since.load(Ordering::SeqCst));
        let now = tokio::time::Instant::now();
        Some(
            now.checked_sub(Duration::from_millis(idle_for))
                .unwrap_or(now)
                + timeout,
        )
    }
}

/// A request in flight (see [`Activity::start`]).
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        let since = coarse_monotonic_ms();
        // The moment first, then the count: a deadline check that sees no request in
        // flight sees when the last one ended.
        a.idle_since.store(since, Ordering::SeqCst);
        a.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A response body that holds its request's [`Busy`] until hyper has written it whole (or
/// dropped it with the connection). No allocation: it wraps the body poem boxed already.
struct Tracked {
    body: HyperBody,
    _busy: Busy,
}

impl hyper::body::Body for Tracked {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// One accepted connection, with what serving it needs.
struct Conn<E> {
    local: SocketAddr,
    peer: SocketAddr,
    ep: Arc<E>,
    limits: Limits,
    stop: watch::Receiver<bool>,
    /// Held until the connection ends.
    _slot: Slot,
}

impl<E: Endpoint<Output = Response> + 'static> Conn<E> {
    /// The TLS handshake, within the header-read deadline (a client that stalls in it is
    /// dropped like one that stalls in a request head), then serving.
    async fn handshake(mut self, stream: TcpStream, acceptor: TlsAcceptor) {
        let deadline = self.limits.header_read_timeout;
        let handshake = tokio::time::timeout(deadline, acceptor.accept(stream));
        let tls = tokio::select! {
            r = handshake => r,
            _ = self.stop.wait_for(|s| *s) => return,
        };
        match tls {
            Ok(Ok(tls)) => self.serve(tls, Scheme::HTTPS).await,
            Ok(Err(e)) => tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(peer = %self.peer, "TLS handshake timed out"),
        }
    }

    async fn serve<S>(self, stream: S, scheme: Scheme)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Conn {
            local,
            peer,
            ep,
            limits,
            mut stop,
            _slot,
        } = self;
        let local = LocalAddr(poem::Addr::SocketAddr(local));
        let remote = RemoteAddr(poem::Addr::SocketAddr(peer));
        let activity = Arc::new(Activity::new());
        let seen = activity.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let busy = seen.start();
                if req.version() == poem::http::Version::HTTP_2 {
                    seen.multiplexed.store(true, Ordering::Relaxed);
                }
                let (ep, local, remote, scheme) =
                    (ep.clone(), local.clone(), remote.clone(), scheme.clone());
                async move {
                    let req = poem::Request::from((req, local, remote, scheme));
                    // `E`'s own `call`, not the one poem gives `Arc<E>`: that is an `async
                    // fn` of its own, whose future holds the request and `E`'s future, one
                    // more copy of each per request.
                    let resp = match E::call(&*ep, req).await {
                        Ok(resp) => resp,
                        Err(e) => e.into_response(),
                    };
                    let resp: hyper::Response<HyperBody> = resp.into();
                    Ok::<_, Infallible>(resp.map(|body| Tracked { body, _busy: busy }))
                }
            });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            // The header-read deadline is the connection's own (below), not hyper's.
            .header_read_timeout(None)
            // One buffer per response (head and body copied together, one `send`), not a
            // `writev` of the head and the body: measured fewer kernel cycles per request
            // for API answers, which are small (bench/README.md, session 9).
            .writev(false);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(limits.header_read_timeout));
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
        tokio::pin!(conn);
        // The header-read deadline: checked when it falls due, then moved to when the
        // connection's idle time would run out (or a full period on while it is busy).
        let timeout = limits.header_read_timeout;
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.wait_for(|s| *s) => break,
                () = &mut deadline => {
                    let now = tokio::time::Instant::now();
                    match activity.deadline(timeout) {
                        None => deadline.as_mut().reset(now + timeout),
                        Some(at) if at > now => deadline.as_mut().reset(at),
                        // Idle (or trickling a request head) for the whole period: closed.
                        Some(_) => return,
                    }
                }
            }
        }
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}

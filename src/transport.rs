//! The HTTP server loop: accepts TCP connections and serves them with hyper, with the
//! limits a server facing the open network needs and poem's `Server` does not set:
//! - a header-read deadline (`[server] header_read_timeout`, default 10 s): a request head
//!   must arrive whole within it, and an idle keep-alive connection is closed when no new
//!   request starts within it (slowloris);
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
use std::sync::Arc;
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
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let (ep, local, remote, scheme) =
                    (ep.clone(), local.clone(), remote.clone(), scheme.clone());
                async move {
                    let req = poem::Request::from((req, local, remote, scheme));
                    let resp = match ep.call(req).await {
                        Ok(resp) => resp,
                        Err(e) => e.into_response(),
                    };
                    Ok::<hyper::Response<HyperBody>, Infallible>(resp.into())
                }
            });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
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
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.wait_for(|s| *s) => {}
        }
        conn.as_mut().graceful_shutdown();
        let _ = conn.await;
    }
}

//! A TCP proxy that a test controls: forwards to a real service until cut.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
};

use tokio::{
    io::copy_bidirectional,
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

/// Forwards every connection to `upstream`. [`TcpProxy::cut`] drops all open connections and
/// refuses new ones (they are accepted and closed at once, like a service that is down);
/// [`TcpProxy::restore`] forwards again. Dropping the proxy stops it.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    /// Cancelled on `cut` to end every forwarded connection; replaced on `restore`.
    connections: Arc<Mutex<CancellationToken>>,
    accept_loop: JoinHandle<()>,
}

impl TcpProxy {
    pub async fn start(upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let connections = Arc::new(Mutex::new(CancellationToken::new()));
        let accept_loop = tokio::spawn(accept(listener, upstream, up.clone(), connections.clone()));
        Ok(TcpProxy {
            addr,
            up,
            connections,
            accept_loop,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        lock(&self.connections).cancel();
    }

    pub fn restore(&self) {
        *lock(&self.connections) = CancellationToken::new();
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accept_loop.abort();
        lock(&self.connections).cancel();
    }
}

fn lock(m: &Mutex<CancellationToken>) -> std::sync::MutexGuard<'_, CancellationToken> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn accept(
    listener: TcpListener,
    upstream: SocketAddr,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<CancellationToken>>,
) {
    while let Ok((mut client, _)) = listener.accept().await {
        if !up.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let token = lock(&connections).clone();
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            tokio::select! {
                _ = copy_bidirectional(&mut client, &mut server) => {}
                _ = token.cancelled() => {}
            }
        });
    }
}

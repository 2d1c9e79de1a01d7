//! Connection resets for outage tests: a listener that drops new connections and a stream
//! whose reads and writes fail while the fake is "reset", so that connections already kept
//! alive by a client break too, as they do when a load balancer goes away.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::serve::Listener;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::azure::fake::net::TlsListener;

/// [`TlsListener`], with every connection cut while `reset` is set.
pub struct ResettableListener {
    pub inner: TlsListener,
    pub reset: Arc<AtomicBool>,
}

impl Listener for ResettableListener {
    type Io = Resettable<<TlsListener as Listener>::Io>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (io, addr) = self.inner.accept().await;
            if !self.reset.load(Ordering::SeqCst) {
                return (Resettable { io, reset: self.reset.clone() }, addr);
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.inner.addr)
    }
}

/// A stream that fails with `ConnectionReset` while the flag is set.
pub struct Resettable<Io> {
    io: Io,
    reset: Arc<AtomicBool>,
}

impl<Io> Resettable<Io> {
    fn check(&self) -> io::Result<()> {
        if self.reset.load(Ordering::SeqCst) { Err(io::ErrorKind::ConnectionReset.into()) } else { Ok(()) }
    }
}

impl<Io: AsyncRead + Unpin> AsyncRead for Resettable<Io> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.check()?;
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<Io: AsyncWrite + Unpin> AsyncWrite for Resettable<Io> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.check()?;
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

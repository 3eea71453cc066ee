//! TLS for the relay: its page and API over https, and `wss` for browsers.
//!
//! An https page cannot open `ws://` (mixed content), so a relay that serves
//! a site over https must accept `wss`. One certificate chain and key (PEM
//! files, as ACME clients write them) serve both: the HTTP server through
//! rustls here, the WebSocket listener (`/tls/ws` listen addresses) through
//! libp2p-websocket's rustls. WebRTC-direct needs no CA (its certhash is in
//! the address) and stays the fallback.
//!
//! Renewal: the files are read at start, so a restart picks up renewed ones
//! (`systemctl restart`, which the example unit's ACME hook runs). A reload
//! without restart would cover https only: libp2p-websocket fixes its TLS
//! configuration when the transport is built.
//!
//! The https listener does each TLS handshake in a task of its own, at most
//! `MAX_HANDSHAKES` at once (finished ones not yet taken by the server
//! included) and each within `HANDSHAKE_TIMEOUT`, so a client
//! that opens a connection and sends nothing holds one slot for seconds and
//! never stops the accept loop.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

const MAX_HANDSHAKES: usize = 256;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate chain (leaf first) and its private key, read and checked.
pub struct TlsFiles {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Clone for TlsFiles {
    fn clone(&self) -> Self {
        Self { chain: self.chain.clone(), key: self.key.clone_key() }
    }
}

impl TlsFiles {
    /// Reads PEM files: the chain (one or more CERTIFICATE blocks) and the
    /// key (PKCS#8, PKCS#1 or SEC1). Any error names the file; a key that
    /// does not match the certificate is refused here, not at the first
    /// browser's handshake.
    pub fn load(cert: &Path, key: &Path) -> Result<Self> {
        let chain = CertificateDer::pem_file_iter(cert)
            .with_context(|| format!("reading the TLS certificate {}", cert.display()))?
            .collect::<Result<Vec<_>, _>>()
            .with_context(|| format!("parsing the TLS certificate {}", cert.display()))?;
        if chain.is_empty() {
            bail!("{}: no CERTIFICATE in the file", cert.display());
        }
        let key = PrivateKeyDer::from_pem_file(key)
            .with_context(|| format!("reading the TLS key {} (PEM: PKCS#8, PKCS#1 or SEC1)", key.display()))?;
        let files = Self { chain, key };
        files.server_config().context("the TLS certificate and key do not go together")?;
        Ok(files)
    }

    fn server_config(&self) -> Result<rustls::ServerConfig> {
        let mut cfg = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        // HTTP/1.1 only: axum here is built without HTTP/2.
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }

    /// The same chain and key for libp2p's WebSocket listener (`/tls/ws`).
    pub fn websocket(&self) -> Result<libp2p::websocket::tls::Config> {
        // libp2p's `PrivateKey::new` panics on a key it cannot classify:
        // classify it first, the same way, for an error instead.
        let der = self.key.secret_der().to_vec();
        PrivateKeyDer::try_from(der.as_slice()).map_err(|e| anyhow::anyhow!("TLS key for WebSocket: {e}"))?;
        let key = libp2p::websocket::tls::PrivateKey::new(der);
        let certs = self.chain.iter().map(|c| libp2p::websocket::tls::Certificate::new(c.to_vec()));
        libp2p::websocket::tls::Config::new(key, certs).map_err(|e| anyhow::anyhow!("TLS for WebSocket: {e}"))
    }
}

/// An https listener for `axum::serve`: TCP accepts, TLS handshakes beside
/// them, finished streams handed over in order of completion.
pub struct HttpsListener {
    local: SocketAddr,
    ready: tokio::sync::mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl HttpsListener {
    /// Must be called within the tokio runtime that serves HTTP.
    pub fn new(tcp: TcpListener, files: &TlsFiles) -> Result<Self> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(files.server_config()?));
        let (tx, ready) = tokio::sync::mpsc::channel(64);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = slots.clone().acquire_owned().await else { return };
                let (tcp_stream, peer) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, as axum's own listener does.
                        tracing::warn!(error = %e, "https accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp_stream)).await {
                        // The slot is held until the server takes the stream, so
                        // finished handshakes waiting for it count too.
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                            drop(permit);
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self { local, ready })
    }
}

impl axum::serve::Listener for HttpsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(x) => x,
            // The accept task ended (its runtime is shutting down): nothing more comes.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

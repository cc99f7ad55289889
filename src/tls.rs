//! TLS set-up shared by every client that speaks TLS (redis, AMQP): the
//! process-wide rustls crypto provider.
//!
//! **Invariant:** the provider is installed at most once, before the first
//! TLS connection.

/// Installs rustls' ring provider as the process default, once; both the
/// redis and the AMQP TLS stacks use it.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider was installed first; that one is used.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

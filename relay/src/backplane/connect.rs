//! Reaching NATS: the backplane's settings (servers, TLS, credentials,
//! with no secret in `Debug`), NKey authentication when built with it, and
//! the connection that [`start`] hands to the hub as a [`Pending`].

use super::*;

/// The backplane's settings. `Debug` shows no credentials.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// NATS servers (`nats://HOST:PORT` or `tls://HOST:PORT`), tried in turn.
    pub servers: Vec<String>,
    /// Start without the broker (local rooms only) when it cannot be
    /// reached, and keep trying.
    pub optional: bool,
    /// User and password for the broker.
    pub user: Option<(String, String)>,
    /// Token for the broker.
    pub token: Option<String>,
    /// Trust the broker's TLS certificate to this CA (PEM).
    pub ca: Option<std::path::PathBuf>,
    /// A file holding an NKey seed for the broker (feature `nkeys`).
    pub nkey: Option<std::path::PathBuf>,
    /// A NATS `.creds` file for the broker (feature `nkeys`).
    pub creds: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let servers: Vec<String> = self.servers.iter().map(|s| shown(s)).collect();
        f.debug_struct("Options")
            .field("servers", &servers)
            .field("optional", &self.optional)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("password", &self.user.as_ref().map(|_| "(set)"))
            .field("token", &self.token.as_ref().map(|_| "(set)"))
            .field("ca", &self.ca)
            .field("nkey", &self.nkey)
            .field("creds", &self.creds)
            .finish()
    }
}

/// Largest NKey seed or `.creds` file read.
#[cfg(feature = "nkeys")]
const MAX_KEY_FILE: u64 = 64 * 1024;

/// NKey or `.creds` authentication, when asked for.
#[cfg(feature = "nkeys")]
async fn nkey_auth(
    mut connect: async_nats::ConnectOptions,
    opts: &Options,
) -> anyhow::Result<async_nats::ConnectOptions> {
    use anyhow::Context;
    let read = |path: &std::path::Path| -> anyhow::Result<zeroize::Zeroizing<String>> {
        let meta =
            std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
        if !meta.is_file() || meta.len() > MAX_KEY_FILE {
            anyhow::bail!("{} is not a small regular file", path.display());
        }
        Ok(zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ))
    };
    if let Some(path) = &opts.nkey {
        let text = read(path)?;
        let seed = text.trim();
        // Checked here, so a bad file is an error at start, not a refusal
        // from the broker.
        nkeys::KeyPair::from_seed(seed)
            .map_err(|e| anyhow::anyhow!("{} holds no NKey seed: {e}", path.display()))?;
        connect = connect.nkey(seed.to_string());
    }
    if let Some(path) = &opts.creds {
        let text = read(path)?;
        connect = connect
            .credentials(&text)
            .with_context(|| format!("{} is not a NATS credentials file", path.display()))?;
    }
    Ok(connect)
}

/// Without the `nkeys` feature, asking for NKeys is a clear error.
#[cfg(not(feature = "nkeys"))]
async fn nkey_auth(
    connect: async_nats::ConnectOptions,
    opts: &Options,
) -> anyhow::Result<async_nats::ConnectOptions> {
    if opts.nkey.is_some() || opts.creds.is_some() {
        anyhow::bail!(
            "this relay was built without NKey support: build it with `cargo build --release -p relay --features nkeys`, or use a password or token"
        );
    }
    Ok(connect)
}

/// A NATS address as it may be logged: any `user:password@` or `token@`
/// in it is replaced by `***@`.
pub fn shown(server: &str) -> String {
    let (scheme, rest) = server.split_once("://").unwrap_or(("", server));
    let rest = match rest.rsplit_once('@') {
        Some((_, host)) => format!("***@{host}"),
        None => rest.to_string(),
    };
    if scheme.is_empty() {
        rest
    } else {
        format!("{scheme}://{rest}")
    }
}

/// Connects to the broker and starts the backplane for `hub`; returns
/// the handle the hub publishes through. Without `optional`, an
/// unreachable broker is an error; with it, the relay starts with local
/// rooms only and connects when the broker appears.
pub async fn start(
    opts: &Options,
    relay: u32,
    stop: CancellationToken,
) -> anyhow::Result<(Arc<Handle>, Pending)> {
    use anyhow::Context;
    let link = Arc::new(Notify::new());
    let poke = Arc::clone(&link);
    let mut connect = async_nats::ConnectOptions::new()
        .name("teamchat-relay")
        .connection_timeout(Duration::from_secs(5))
        // A dead link is noticed within a few seconds, not NATS's minutes.
        .ping_interval(HEARTBEAT)
        // The broker does not send our own messages back.
        .no_echo()
        .client_capacity(CLIENT_CAPACITY)
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        // Back soon after a short outage: every 250 ms, then at most 1 s
        // apart (the default waits up to 4 s between tries).
        .reconnect_delay_callback(|attempts| {
            Duration::from_millis(250 * attempts.min(4) as u64)
        })
        .event_callback(move |e| {
            // The backplane reads the link's state from the client itself
            // (these events may be dropped under load); an event only makes
            // it look sooner. Notifications collapse, so bursts cost nothing.
            poke.notify_one();
            async move {
                match e {
                    async_nats::Event::Connected => info!("backplane connected"),
                    async_nats::Event::Disconnected => warn!("backplane disconnected: rooms on this relay alone go on, shared rooms' messages are held (publishers wait) while reconnecting"),
                    async_nats::Event::SlowConsumer(_) => warn!("backplane: the broker dropped messages to this relay (slow consumer); members see the gap"),
                    other => info!(event = %other, "backplane"),
                }
            }
        });
    if let Some((u, p)) = &opts.user {
        connect = connect.user_and_password(u.clone(), p.clone());
    }
    if let Some(t) = &opts.token {
        connect = connect.token(t.clone());
    }
    connect = nkey_auth(connect, opts).await?;
    if let Some(ca) = &opts.ca {
        connect = connect.add_root_certificates(ca.clone()).require_tls(true);
    }
    if opts.optional {
        connect = connect.retry_on_initial_connect();
    }
    let servers: Vec<async_nats::ServerAddr> = opts
        .servers
        .iter()
        .map(|s| {
            s.parse()
                .with_context(|| format!("bad backplane address {}", shown(s)))
        })
        .collect::<anyhow::Result<_>>()?;
    let client = connect
        .connect(servers)
        .await
        .context("cannot reach the backplane (NATS)")?;
    let (tx, rx) = mpsc::channel(QUEUE);
    let handle = Arc::new(Handle {
        relay,
        tx,
        queued: AtomicUsize::new(0),
        up: AtomicBool::new(client.connection_state() == async_nats::connection::State::Connected),
        linked: AtomicBool::new(
            client.connection_state() == async_nats::connection::State::Connected,
        ),
        dropped: AtomicU64::new(0),
        gaps: AtomicU64::new(0),
        rooms: Notify::new(),
        drained: Notify::new(),
        heard: AtomicBool::new(false),
        heard_notify: Notify::new(),
    });
    Ok((
        Arc::clone(&handle),
        Pending {
            client,
            rx,
            link,
            handle,
            stop,
        },
    ))
}

//! `teamchat-relay`: parses the configuration, starts the relay, and stops
//! it gracefully on SIGINT or SIGTERM.

use anyhow::Result;
use clap::Parser;
use relay::{Args, Config, Relay};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn main() -> Result<()> {
    let config = Config::resolve(Args::parse())?;
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let relay = Relay::bind(config).await?;
        let addr = relay.local_addr()?;
        // Printed on stdout for people and scripts, whatever the log filter.
        println!("teamchat-relay listening on {addr}");
        println!(
            "certificate sha256={} (members pin this in their invite)",
            relay.fingerprint()
        );
        let stop = CancellationToken::new();
        tokio::spawn(stop_on_signal(stop.clone()));
        relay.run(stop).await
    })
}

async fn stop_on_signal(stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    tracing::info!("signal received");
    stop.cancel();
}

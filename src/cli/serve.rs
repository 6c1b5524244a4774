//! `chorus serve`: the HTTP/SSE/WebSocket service. Flags override `CHORUS_SERVE_*`
//! environment variables, which override the `--config` file, which overrides the defaults.

use anyhow::{Context, Result};
use chorus::serve::ServeConfig;
use std::path::PathBuf;

#[derive(clap::Args)]
pub(crate) struct ServeArgs {
    /// JSON config file (fields as in `ServeConfig`: listen, data_dir, token, body_limit,
    /// rate_per_second, rate_burst, timeout_seconds, max_sessions, max_users, restore,
    /// preload_users, stream_buffer, max_status_chars, activity, feed_entries).
    #[arg(long, env = "CHORUS_SERVE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080; port 0 picks a free port).
    #[arg(long, env = "CHORUS_SERVE_LISTEN")]
    pub(crate) listen: Option<String>,
    /// Where sessions are saved and restored from (default ./chorus-data).
    #[arg(long, env = "CHORUS_SERVE_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Bearer token required on /v1 (prefer the environment variable: flags show in `ps`).
    #[arg(long, env = "CHORUS_SERVE_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Largest request body in bytes (default 1 MiB).
    #[arg(long, env = "CHORUS_SERVE_BODY_LIMIT")]
    pub(crate) body_limit: Option<usize>,
    /// Requests per second per client IP; 0 turns the limit off (default 50000).
    #[arg(long, env = "CHORUS_SERVE_RATE")]
    pub(crate) rate: Option<u32>,
    /// Burst above the rate (default 10000).
    #[arg(long, env = "CHORUS_SERVE_RATE_BURST")]
    pub(crate) rate_burst: Option<u32>,
    /// Seconds a request may take, streams excepted (default 120).
    #[arg(long, env = "CHORUS_SERVE_TIMEOUT")]
    pub(crate) timeout: Option<u64>,
    /// Most live sessions (default 16).
    #[arg(long, env = "CHORUS_SERVE_MAX_SESSIONS")]
    pub(crate) max_sessions: Option<usize>,
    /// Longest status the Mastodon API takes, in characters (default 500).
    #[arg(long, env = "CHORUS_SERVE_MAX_STATUS_CHARS")]
    pub(crate) max_status_chars: Option<usize>,
    /// Events a stream client may fall behind before it is dropped (default 256).
    #[arg(long, env = "CHORUS_SERVE_STREAM_BUFFER")]
    pub(crate) stream_buffer: Option<usize>,
    /// Volume knob of every session: scales each event's reactions, and so its latency
    /// (0.01 to 100; default 1).
    #[arg(long, env = "CHORUS_SERVE_ACTIVITY")]
    pub(crate) activity: Option<f32>,
    /// Entries each session keeps for reads, the newest (default 5,000,000; 0: all).
    #[arg(long, env = "CHORUS_SERVE_FEED_ENTRIES")]
    pub(crate) feed_entries: Option<usize>,
    /// Do not restore the sessions saved in the data dir.
    #[arg(long)]
    pub(crate) no_restore: bool,
    /// Create one session of this many users at start when none was restored.
    #[arg(long, env = "CHORUS_SERVE_PRELOAD_USERS")]
    pub(crate) preload_users: Option<u32>,
    /// Logs as JSON lines (default: human-readable); RUST_LOG filters them (default info).
    #[arg(long)]
    pub(crate) log_json: bool,
}

/// The configuration after the precedence rules.
pub(crate) fn config(args: &ServeArgs) -> Result<ServeConfig> {
    let mut c = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let mut de = serde_json::Deserializer::from_str(&text);
            serde_path_to_error::deserialize(&mut de)
                .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))?
        }
        None => ServeConfig::default(),
    };
    if let Some(v) = &args.listen {
        c.listen = v.clone();
    }
    if let Some(v) = &args.data_dir {
        c.data_dir = v.clone();
    }
    if let Some(v) = &args.token {
        c.token = Some(v.clone());
    }
    if let Some(v) = args.body_limit {
        c.body_limit = v;
    }
    if let Some(v) = args.rate {
        c.rate_per_second = v;
    }
    if let Some(v) = args.rate_burst {
        c.rate_burst = v;
    }
    if let Some(v) = args.timeout {
        c.timeout_seconds = v;
    }
    if let Some(v) = args.max_sessions {
        c.max_sessions = v;
    }
    if let Some(v) = args.preload_users {
        c.preload_users = v;
    }
    if let Some(v) = args.stream_buffer {
        c.stream_buffer = v;
    }
    if let Some(v) = args.max_status_chars {
        c.max_status_chars = v;
    }
    if let Some(v) = args.activity {
        c.activity = v;
    }
    if let Some(v) = args.feed_entries {
        c.feed_entries = v;
    }
    if !chorus::filter::ACTIVITY_RANGE.contains(&c.activity) {
        anyhow::bail!("activity: {} must be between 0.01 and 100", c.activity);
    }
    if c.max_status_chars == 0 {
        anyhow::bail!("max_status_chars: must be at least 1");
    }
    if c.stream_buffer == 0 {
        anyhow::bail!("stream_buffer: must be at least 1 event");
    }
    if args.no_restore {
        c.restore = false;
    }
    if c.token.as_deref().is_some_and(str::is_empty) {
        anyhow::bail!("token: an empty token would let anyone in; leave it unset for an open server");
    }
    Ok(c)
}

pub(crate) fn run_serve(args: ServeArgs) -> Result<()> {
    let config = config(&args)?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(chorus::serve::run(config, |addr| {
        println!("listening on http://{addr}");
    }))?;
    Ok(())
}

//! `bare-pingora`: the throughput baseline for Sluice.
//!
//! The smallest useful pingora HTTP/1.1 reverse proxy: every request is
//! forwarded unchanged to one fixed upstream. Sluice's CPU per request and
//! throughput are stated as ratios to this binary's, measured on the same
//! machine in the same run, so it must do no more work than pingora itself
//! needs:
//!
//! - the same global allocator as the gateway (mimalloc), so allocation
//!   cost is not what the comparison measures;
//! - no request or response filters (every `ProxyHttp` phase but
//!   `upstream_peer` keeps its default);
//! - upstream connections are pooled and reused (pingora's default pool,
//!   `upstream_keepalive_pool_size` = 128, is enough for the benchmark's 32
//!   clients);
//! - `TCP_NODELAY` is already set by pingora 0.9.1 on every accepted socket
//!   (`listeners/l4.rs`) and every upstream connection (`connectors/l4.rs`),
//!   so there is nothing to configure here.

use std::net::SocketAddr;

use async_trait::async_trait;
use clap::Parser;
use pingora_core::server::Server;
use pingora_core::server::configuration::ServerConf;
use pingora_core::upstreams::peer::HttpPeer;
use pingora_error::{Error, Result};
use pingora_proxy::{ProxyHttp, Session};

// Must match the gateway's allocator (proxy/src/main.rs): a baseline on
// glibc malloc would make every ratio against it flatter the gateway.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(about = "Minimal pingora pass-through proxy (benchmark baseline)")]
struct Args {
    /// Address to listen on, e.g. 127.0.0.1:8081.
    #[arg(long)]
    listen: SocketAddr,
    /// The single plain-HTTP/1.1 upstream, e.g. 127.0.0.1:8082.
    #[arg(long)]
    upstream: SocketAddr,
    /// Worker threads of the proxy service; 0 = one per core, the same
    /// default as sluice's `[server] threads`, so the baseline gets the
    /// same CPU budget as the gateway it is compared with.
    #[arg(long, default_value_t = 0)]
    threads: usize,
}

/// Pass-through proxy: one fixed upstream, nothing else.
struct PassThrough {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for PassThrough {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    /// Runs once per request; always the same plain-text peer, so pingora's
    /// pool key is constant and idle connections are reused.
    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }

    /// Runs after each request. pingora logs errors through the `log`
    /// crate, which has no logger installed here, so failures are printed
    /// directly: the benchmark keeps this output when requests fail. The
    /// success path does nothing.
    async fn logging(&self, _session: &mut Session, e: Option<&Error>, _ctx: &mut ()) {
        if let Some(e) = e {
            eprintln!("bare-pingora: request failed: {e}");
        }
    }
}

fn main() {
    let mut args = Args::parse();
    if args.threads == 0 {
        args.threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    }

    // Built from a `ServerConf` rather than `Opt::parse_args()` so pingora
    // does not try to parse our command line.
    let conf = ServerConf {
        threads: args.threads,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();

    let mut proxy = pingora_proxy::http_proxy_service(
        &server.configuration,
        PassThrough {
            upstream: args.upstream,
        },
    );
    proxy.add_tcp(&args.listen.to_string());
    server.add_service(proxy);

    eprintln!(
        "bare-pingora: listening on {} -> upstream {} ({} thread(s))",
        args.listen, args.upstream, args.threads
    );
    server.run_forever();
}

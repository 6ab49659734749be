use std::process::ExitCode;

use clap::Parser;
use sluice::cli::{Cli, Command};

// glibc malloc took a sixth of the proxy's samples under load; mimalloc's
// thread-local free lists make the per-request allocations cheap. The
// bare-pingora baseline uses the same allocator so the comparison is fair.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    sluice::run::init_tracing();
    match cli.command {
        Command::Serve(args) => sluice::run::serve(args),
        Command::MockProvider(args) => sluice::run::mock_provider(args),
        Command::Plugins(cmd) => sluice::run::plugins(cmd),
        Command::Keys(args) => sluice::control::keys(args),
        Command::Events(args) => sluice::control::events(args),
        Command::Traces(args) => sluice::ops::traces(args),
        Command::Audit(cmd) => sluice::ops::audit(cmd),
        Command::Users(args) => sluice::ops::users(args),
        Command::Backup {
            dest,
            state,
            output,
        } => sluice::ops::backup(&dest, &state, &output),
        Command::Restore { src, state, output } => sluice::ops::restore(&src, &state, &output),
    }
}

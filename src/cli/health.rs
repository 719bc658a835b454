//! `svi health`: an OPTIONS probe for monitoring systems (Nagios/Centreon plugin exit codes).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use engine::config::EngineConfig;

use super::runtime;

#[derive(clap::Args, Debug)]
pub struct HealthArgs {
    /// Configuration whose SIP address is probed (default: the embedded default's).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to probe instead of the configured one.
    #[arg(long, value_name = "ADDR:PORT")]
    sip: Option<SocketAddr>,
    /// Answer time above which the check warns, in milliseconds.
    #[arg(long, default_value_t = 500)]
    warn_ms: u64,
    /// Answer time after which the check is critical, in milliseconds.
    #[arg(long, default_value_t = 2000)]
    timeout_ms: u64,
}

pub fn run(args: HealthArgs) -> anyhow::Result<ExitCode> {
    let target = match (args.sip, args.config) {
        (Some(a), _) => a,
        (None, Some(file)) => match EngineConfig::load(&file) {
            Ok(c) => c.sip.listen,
            Err(e) => {
                println!("SVI UNKNOWN - {e}");
                return Ok(ExitCode::from(crate::health::UNKNOWN));
            }
        },
        (None, None) => SocketAddr::from(([127, 0, 0, 1], 5060)),
    };
    let (code, line) = runtime()?.block_on(crate::health::check(
        target,
        Duration::from_millis(args.warn_ms),
        Duration::from_millis(args.timeout_ms),
    ));
    println!("{line}");
    Ok(ExitCode::from(code))
}

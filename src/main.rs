//! `svi`: the composition root. Parses the command line, loads configuration, wires the
//! crates together and runs the chosen command. No business logic lives here.

mod admin;
mod cli;
mod embedded;
mod ha;
mod health;
mod systemd;

use std::process::ExitCode;

use clap::Parser;

/// jemalloc rather than glibc's malloc: with its background thread purging pages a second
/// after they are freed (`.cargo/config.toml`), the engine's memory goes back towards idle
/// after a load peak, where glibc's arenas kept it and grew from peak to peak
/// (docs/adr/0005-allocator.md). Tunable at run time with `_RJEM_MALLOC_CONF`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("svi: error: {}", chain(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, skipping a cause its parent's message already quotes (our
/// error types name their cause in their own message).
fn chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let msg = cause.to_string();
        if !text.contains(&msg) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&msg);
        }
    }
    text
}

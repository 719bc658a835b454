//! `svi`: the composition root. Parses the command line, loads configuration, wires the
//! crates together and runs the chosen command. No business logic lives here.

mod cli;
mod embedded;
mod health;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("svi: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

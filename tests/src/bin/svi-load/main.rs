//! svi-load: the capacity benchmark's load generator (see `docs/performance.md`).
//!
//! - `calls`: N concurrent two-way G.711 calls, or a ramp of steps, against the engine over
//!   SIP (or against the echo baseline with `--echo`), measured per step; with
//!   `--answer-on`, also the second party the engine bridges each call to;
//! - `echo`: the baseline, a minimal UDP echo with one socket per call;
//! - `cps`: the highest rate of short calls sustained without failure (sipp as the caller),
//!   against the engine or against a sipp UAS (the baseline);
//! - `ping`: waits until a SIP address answers OPTIONS;
//! - `report`: turns the JSON of the other commands into the Markdown + JSON report.
//!
//! Modules: `args` (command line), `hist` (histograms), `procstat` (`/proc` CPU and memory),
//! `rtp` (packets, G.711, RFC 4733), `tx`/`rx` (a lane's sending task and receiving thread),
//! `lanes` (the media side), `signalling` (SIP, the caller side), `answer` (SIP, the target
//! side of bridged calls), and one module per subcommand.

mod answer;
mod args;
mod calls;
mod cps;
mod echo;
mod hist;
mod lanes;
mod ping;
mod procstat;
mod report;
mod rtp;
mod rx;
mod signalling;
mod tx;

use std::process::ExitCode;

fn usage() -> String {
    format!(
        "usage:\n  {}\n  {}\n  {}\n  {}\n  {}",
        calls::USAGE,
        echo::USAGE,
        cps::USAGE,
        ping::USAGE,
        report::USAGE
    )
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = argv.split_first() else {
        eprintln!("{}", usage());
        return ExitCode::from(2);
    };
    let result = match command.as_str() {
        "calls" => calls::main(rest),
        "echo" => echo::main(rest),
        "cps" => cps::main(rest),
        "ping" => ping::main(rest),
        "report" => report::main(rest),
        "-h" | "--help" | "help" => {
            println!("{}", usage());
            return ExitCode::SUCCESS;
        }
        other => {
            eprintln!("unknown command `{other}`\n{}", usage());
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("svi-load {command}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

//! `svi secret encrypt`: turns a password or API key into an `enc:v1:` setting for the
//! configuration file, with the data directory's key (created on first use).

use std::io::{BufRead, Write};
use std::process::ExitCode;

use anyhow::Context as _;

use super::{data_dir_of, Where};

#[derive(clap::Subcommand, Debug)]
pub enum SecretCommand {
    /// Read a secret from standard input (one line) and print it encrypted, to paste as a
    /// setting's value (`api_key = "enc:v1:..."`). The key is DATA_DIR/secrets.key: copy it
    /// to the other node of an HA pair.
    Encrypt {
        #[command(flatten)]
        at: Where,
    },
}

pub fn run(command: SecretCommand) -> anyhow::Result<ExitCode> {
    match command {
        SecretCommand::Encrypt { at } => {
            let data_dir = data_dir_of(&at)?;
            let key = engine::secrets::SecretKey::load_or_create(&data_dir)?;
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the secret from standard input")?;
            let secret = line.trim_end_matches(['\r', '\n']);
            if secret.is_empty() {
                anyhow::bail!("no secret on standard input (one line, e.g. `echo -n ... | svi secret encrypt`)");
            }
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", key.encrypt(secret))?;
            eprintln!("encrypted with {}", key.path().display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

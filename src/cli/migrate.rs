//! `svi migrate [--check]`: the schema versions of a data directory's databases, and the
//! forward steps this build would run on them (`engine::storage::migrate`).
//!
//! `--check` runs the steps on copies in a scratch directory and reports; the data
//! directory is opened read-only and never changed, so it is safe on a validation copy and
//! on a running node alike. Without `--check` the steps run for real (a backup of each
//! file first), on a stopped node only; `svi run` does the same at every start.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use engine::storage::migrate::{self, Schema};

use super::{data_dir_of, ensure_stopped, runtime, Where};

#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    #[command(flatten)]
    at: Where,
    /// Run the steps on a copy and report, changing nothing.
    #[arg(long)]
    check: bool,
    /// Scratch directory for the copies of `--check` (default: a temporary directory).
    #[arg(long, value_name = "DIR", requires = "check")]
    scratch: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// One file's line of the report.
#[derive(Debug, serde::Serialize)]
struct FileReport {
    file: &'static str,
    /// `None`: the file does not exist yet (created at first start).
    from: Option<u32>,
    to: u32,
    steps: Vec<&'static str>,
    /// `--check`: the copy's integrity check; else where the pre-migration copy went.
    #[serde(skip_serializing_if = "Option::is_none")]
    integrity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup: Option<PathBuf>,
    /// Why the file cannot be migrated (newer release, failing step...).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl FileReport {
    fn ok(&self) -> bool {
        self.error.is_none() && self.integrity.as_deref().is_none_or(|i| i == "ok")
    }
}

pub fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let data_dir = data_dir_of(&args.at)?;
    if !data_dir.is_dir() {
        anyhow::bail!("{}: no such data directory", data_dir.display());
    }
    if !args.check {
        ensure_stopped(&data_dir, "migrate")?;
    }
    let scratch = match &args.scratch {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            Scratch::Given(d.clone())
        }
        None => Scratch::Temp(tempfile::tempdir()?),
    };
    let reports = runtime()?.block_on(async {
        let mut out = Vec::new();
        for schema in migrate::ALL {
            out.push(if args.check {
                check(&data_dir, schema, scratch.path()).await
            } else {
                apply(&data_dir, schema).await
            });
        }
        out
    });
    let ok = reports.iter().all(FileReport::ok);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "data_dir": data_dir,
                "check": args.check,
                "ok": ok,
                "files": reports,
            }))?
        );
    } else {
        print_text(&data_dir, args.check, &reports);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

enum Scratch {
    Given(PathBuf),
    Temp(tempfile::TempDir),
}

impl Scratch {
    fn path(&self) -> &Path {
        match self {
            Scratch::Given(p) => p,
            Scratch::Temp(t) => t.path(),
        }
    }
}

fn absent(schema: &'static Schema) -> FileReport {
    FileReport {
        file: schema.file,
        from: None,
        to: schema.latest(),
        steps: Vec::new(),
        integrity: None,
        backup: None,
        error: None,
    }
}

async fn check(data_dir: &Path, schema: &'static Schema, scratch: &Path) -> FileReport {
    let path = data_dir.join(schema.file);
    if !path.exists() {
        return absent(schema);
    }
    match migrate::check_copy(&path, schema, scratch).await {
        Ok(r) => FileReport {
            file: schema.file,
            from: Some(r.from),
            to: r.to,
            steps: r.steps,
            integrity: Some(r.integrity),
            backup: None,
            error: None,
        },
        Err(e) => FileReport {
            from: migrate::file_version(&path).await.ok(),
            error: Some(e.to_string()),
            ..absent(schema)
        },
    }
}

async fn apply(data_dir: &Path, schema: &'static Schema) -> FileReport {
    let path = data_dir.join(schema.file);
    if !path.exists() {
        return absent(schema);
    }
    let from = migrate::file_version(&path).await.ok();
    let backups = data_dir.join(engine::storage::BACKUP_DIR);
    match migrate::migrate_path(&path, schema, &backups).await {
        Ok(Some(m)) => FileReport {
            file: schema.file,
            from: Some(m.from),
            to: m.to,
            steps: m.steps,
            integrity: None,
            backup: m.backup,
            error: None,
        },
        Ok(None) => FileReport {
            from,
            ..absent(schema)
        },
        Err(e) => FileReport {
            from,
            error: Some(e.to_string()),
            ..absent(schema)
        },
    }
}

fn print_text(data_dir: &Path, check: bool, reports: &[FileReport]) {
    println!(
        "{} {}",
        if check {
            "checked on a copy (nothing changed):"
        } else {
            "migrated:"
        },
        data_dir.display()
    );
    for r in reports {
        let Some(from) = r.from else {
            println!(
                "  {:<12} absent (created at first start, version {})",
                r.file, r.to
            );
            continue;
        };
        if let Some(e) = &r.error {
            println!("  {:<12} version {from}: FAILED: {e}", r.file);
            continue;
        }
        if r.steps.is_empty() {
            println!("  {:<12} version {from}: up to date", r.file);
        } else {
            let verb = if check { "would run" } else { "ran" };
            println!(
                "  {:<12} version {from} -> {}: {verb} {}",
                r.file,
                r.to,
                r.steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| format!("step {} ({s})", from as usize + i + 1))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        if let Some(i) = &r.integrity {
            println!("  {:<12} integrity of the migrated copy: {i}", "");
        }
        if let Some(b) = &r.backup {
            println!("  {:<12} previous content kept in {}", "", b.display());
        }
    }
}

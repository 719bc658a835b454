//! `svi backup` and `svi restore`: a hot backup of a node's data, and putting one back on a
//! stopped node (`engine::backup` for the files, `ha::restore` for the replicated state).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use engine::backup::{self, restore as files};
use engine::storage::Storage;
use ha::restore::RestoreAs;

use super::{ensure_stopped, load_config, runtime, Where};

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    #[command(flatten)]
    at: Where,
    /// Where to write: a `.tar` file, or a new or empty directory (default: a tar named
    /// after the node and the time in the backup directory, `[backup] dir`).
    #[arg(long, value_name = "PATH")]
    out: Option<PathBuf>,
    /// Include the recording files named by the recording index, and the recorded messages.
    #[arg(long)]
    recordings: bool,
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The backup: a `.tar` file or a directory written by `svi backup`.
    #[arg(value_name = "FILE")]
    backup: PathBuf,
    #[command(flatten)]
    at: Where,
    /// Leave out the history: call records, ACD events and the audit log.
    #[arg(long)]
    without_history: bool,
    /// Make this node a new single-voter cluster on the backup's data, even if its
    /// configuration names a pair (the other members then join with empty data directories).
    #[arg(long)]
    new_cluster: bool,
    #[arg(long)]
    json: bool,
}

pub fn backup(args: BackupArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.at)?;
    let data_dir = config.data_dir.clone();
    if !data_dir.join("svi.db").exists() {
        anyhow::bail!(
            "no database in {} (svi.db): nothing to back up",
            data_dir.display()
        );
    }
    let target = args.out.unwrap_or_else(|| {
        config
            .backup
            .dir(&data_dir)
            .join(backup::schedule::file_name(
                &config.node_name,
                chrono::Utc::now(),
            ))
    });
    let source = backup::Source {
        node: config.node_name.clone(),
        recordings_dir: config.recording.settings(&data_dir).dir,
        data_dir: data_dir.clone(),
        recordings: args.recordings,
    };
    let manifest = runtime()?.block_on(async {
        // Read-only: the copy is one read transaction beside the running engine's writes.
        let storage = Storage::open_read_only(&data_dir).await?;
        let m = backup::create(&storage, &source, &target).await;
        storage.close().await;
        anyhow::Ok(m?)
    })?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "backup": target,
                "manifest": manifest,
            }))?
        );
    } else {
        println!("backup written: {}", target.display());
        println!(
            "  node {}, schema version {}, {} call records, {} documents, {} files ({} bytes)",
            manifest.node,
            manifest.schema_version,
            manifest.contents.calls,
            manifest.contents.documents,
            manifest.files.len(),
            manifest.files.iter().map(|f| f.bytes).sum::<u64>()
        );
        if !manifest.missing_recordings.is_empty() {
            println!(
                "  {} recordings named by the index were not on this node's disk: {}",
                manifest.missing_recordings.len(),
                manifest.missing_recordings.join(", ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn restore(args: RestoreArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.at)?;
    let cluster = crate::ha::ha_config(&config)?;
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("creating {}", data_dir.display()))?;
    ensure_stopped(&data_dir, "restore")?;
    let mode = if cluster.members.len() > 1 && !args.new_cluster {
        RestoreAs::Standby
    } else {
        RestoreAs::NewCluster
    };
    if mode == RestoreAs::Standby && args.without_history {
        anyhow::bail!(
            "--without-history on a member of a pair would leave it with other data than its pair (the active node never sends history again): restore with --new-cluster, or without --without-history"
        );
    }
    let recordings_dir = config.recording.settings(&data_dir).dir;
    let report = runtime()?.block_on(async {
        // 1. Check everything before changing anything.
        let opened = files::open(&args.backup, &data_dir)?;
        let staging = tempfile::Builder::new()
            .prefix(".svi-restore-db-")
            .tempdir_in(&data_dir)?;
        let prepared = files::prepare_database(
            &opened,
            &staging.path().join("svi.db"),
            args.without_history,
        )
        .await?;
        ha::restore::check(&cluster, mode, staging.path()).await?;
        // 2. Set the current data aside, put the backup's in, make the raft log agree.
        let aside = files::set_aside(&data_dir)?;
        let placed = files::place(&opened, &prepared, &data_dir, &recordings_dir, &aside)?;
        let reset = ha::restore::reset(&cluster, mode, &aside.join("raft-log.db")).await?;
        anyhow::Ok(serde_json::json!({
            "data_dir": data_dir,
            "set_aside": aside,
            "backup": {
                "node": opened.manifest.node,
                "created_at": opened.manifest.created_at,
                "svi_version": opened.manifest.svi_version,
                "schema_version": prepared.from_version,
                "calls": opened.manifest.contents.calls,
                "documents": opened.manifest.contents.documents,
                "files_checked": opened.files.len(),
            },
            "without_history": prepared.stripped.map(|s| serde_json::json!({
                "calls_removed": s.calls,
                "documents_removed": s.documents,
            })),
            "recordings": placed.recordings,
            "messages": placed.messages,
            "files_unchanged": placed.unchanged,
            "files_replaced": placed.replaced,
            "mode": match reset.mode {
                RestoreAs::Standby => "standby",
                RestoreAs::NewCluster => "new_cluster",
            },
            "applied_index": reset.applied_index,
            "voters": reset.voters,
        }))
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_restore(&report);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_restore(r: &serde_json::Value) {
    let b = &r["backup"];
    println!(
        "restored the backup of {} taken {} (svi {}, schema version {}) into {}",
        b["node"].as_str().unwrap_or("?"),
        b["created_at"].as_str().unwrap_or("?"),
        b["svi_version"].as_str().unwrap_or("?"),
        b["schema_version"],
        r["data_dir"].as_str().unwrap_or("?"),
    );
    println!(
        "  {} files checked against SHA256SUMS; {} call records, {} documents",
        b["files_checked"], b["calls"], b["documents"]
    );
    if let Some(s) = r["without_history"].as_object() {
        println!(
            "  without history: {} call records and {} history documents left out",
            s["calls_removed"], s["documents_removed"]
        );
    }
    println!(
        "  recordings {}, messages {} ({} already present, {} replaced)",
        r["recordings"], r["messages"], r["files_unchanged"], r["files_replaced"]
    );
    println!(
        "  the previous data is kept in {} (delete it when the node runs well)",
        r["set_aside"].as_str().unwrap_or("?")
    );
    if r["mode"] == "standby" {
        println!(
            "  start the node: it rejoins its pair as standby and catches up from the active node"
        );
    } else {
        println!(
            "  start the node: it becomes a new single-voter cluster (voters {}); members of its configuration join it with empty data directories",
            r["voters"]
        );
    }
}

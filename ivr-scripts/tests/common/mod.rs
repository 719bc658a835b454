//! Shared helpers for the integration tests: paths to the samples and the engine context the
//! samples are checked against (the prompts listed in `samples/prompts`, the sample queues and
//! connectors).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ivr_scripts::{Catalog, CheckContext};

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

pub fn sample(name: &str) -> PathBuf {
    repo().join("samples/flows").join(name)
}

/// Reads `language<TAB>name<TAB>text` lines.
pub fn prompt_lines(file: &str) -> Vec<(String, String, String)> {
    let text =
        std::fs::read_to_string(repo().join("samples/prompts").join(file)).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, '\t');
            Some((
                parts.next()?.to_owned(),
                parts.next()?.to_owned(),
                parts.next()?.to_owned(),
            ))
        })
        .collect()
}

/// The engine configuration the samples are written for.
pub fn samples_context() -> CheckContext {
    let mut prompts: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in ["prompts.txt", "fragments.txt"] {
        for (language, name, _) in prompt_lines(file) {
            prompts.entry(language).or_default().insert(name);
        }
    }
    CheckContext {
        default_language: "en".into(),
        languages: prompts.keys().cloned().collect::<Catalog>(),
        prompts: Some(prompts),
        queues: [
            "support",
            "vip",
            "hw",
            "sw",
            "apps",
            "reception",
            "security",
        ]
        .into_iter()
        .collect(),
        data_sources: [
            "directory",
            "appointments",
            "helpdesk_user",
            "ticket_status",
            "visitor_appointment",
            "badge_holder",
            "current_alarm",
        ]
        .into_iter()
        .collect(),
        actions: [
            "create_incident",
            "confirm_visit",
            "block_badge",
            "open_door",
            "ack_alarm",
        ]
        .into_iter()
        .collect(),
    }
}

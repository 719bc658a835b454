//! The embedded default: `samples/` compiled into the binary (see build.rs) and written out
//! under the data directory at start, so the engine loads it through the same code path as
//! any configuration on disk.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// Writes the embedded samples to `DATA_DIR/default/` (replacing older copies) and returns
/// the path of the configuration file there.
pub fn materialise(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let root = data_dir.join("default");
    for (name, bytes) in FILES {
        let path = root.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let same = std::fs::read(&path).map(|b| b == *bytes).unwrap_or(false);
        if !same {
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    Ok(root.join("svi.toml"))
}

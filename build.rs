//! Embeds `samples/` (configuration, flows, prompts) into the binary, so that `svi run` with
//! no argument works on a fresh machine with nothing else installed.

use std::fmt::Write as _;
use std::path::Path;

fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, root, out);
        } else if p
            .extension()
            .is_some_and(|e| e == "db" || e == "db-wal" || e == "db-shm")
        {
            // Databases created by running the samples in place are not samples.
            continue;
        } else if let Ok(rel) = p.strip_prefix(root) {
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn main() {
    // Read when the script runs, not when it was compiled: worktrees sharing a target
    // directory share this compiled script (cargo hashes workspace paths relative to the
    // workspace), and a path baked in at compile time would name another checkout.
    let manifest_dir =
        std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR is set by cargo");
    let root = Path::new(&manifest_dir).join("samples");
    println!("cargo:rerun-if-changed=samples");
    let mut files = Vec::new();
    walk(&root, &root, &mut files);
    // A binary without its default configuration would start nowhere: fail the build.
    assert!(
        files.iter().any(|f| f == "svi.toml"),
        "{}: no svi.toml to embed",
        root.display()
    );
    let mut code = String::from("pub static FILES: &[(&str, &[u8])] = &[\n");
    for f in &files {
        let abs = root.join(f);
        let _ = writeln!(
            code,
            "    ({f:?}, include_bytes!({:?})),",
            abs.to_string_lossy()
        );
    }
    code.push_str("];\n");
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR is set by cargo")).join("embedded.rs");
    std::fs::write(out, code).expect("write embedded.rs");
}

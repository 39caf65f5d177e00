//! Replays the fuzz targets' seed corpora (`fuzz/corpus/<target>/`, see
//! `fuzz/README.md`) in `cargo test`: each parser crate's tests call
//! [`replay`] with what its fuzz target runs, so every seed — and every
//! input that once crashed a parser — is run on every test run.

use std::panic::RefUnwindSafe;
use std::path::PathBuf;

/// Fewest entries a corpus may have: an emptied or moved corpus must fail,
/// not pass vacuously.
const MIN_ENTRIES: usize = 10;

/// Every file of `fuzz/corpus/<target>`, by name.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    // This crate is crates/tern-core; the corpora are at the root.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut entries: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_file())
        .map(|path| {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (name, data)
        })
        .collect();
    entries.sort();
    assert!(
        entries.len() >= MIN_ENTRIES,
        "{}: only {} corpus entries",
        dir.display(),
        entries.len()
    );
    entries
}

/// Runs `f` over every entry of the target's corpus; panics naming the
/// entries on which `f` panicked.
pub fn replay(target: &str, f: impl Fn(&[u8]) + RefUnwindSafe) {
    let panicked: Vec<String> = corpus(target)
        .into_iter()
        .filter(|(_, data)| std::panic::catch_unwind(|| f(data)).is_err())
        .map(|(name, _)| name)
        .collect();
    assert!(panicked.is_empty(), "{target}: panicked on {panicked:?}");
}

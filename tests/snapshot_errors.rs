//! A damaged or foreign snapshot is rejected with its own error, never mis-read.

use snapembed::snapshot::{Snapshot, SnapshotError, FORMAT_VERSION};
use snapembed::{EmbedError, Embedder};

use crate::common::snapshot_path;

fn open_modified(edit: impl FnOnce(&mut Vec<u8>)) -> SnapshotError {
    let mut bytes = std::fs::read(snapshot_path()).unwrap();
    edit(&mut bytes);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.snap");
    std::fs::write(&path, &bytes).unwrap();
    Snapshot::open(&path).unwrap_err()
}

#[test]
fn truncated_file() {
    let e = open_modified(|b| b.truncate(b.len() - 1000));
    assert!(matches!(e, SnapshotError::Truncated { .. }), "{e}");
    let e = open_modified(|b| b.truncate(10));
    assert!(matches!(e, SnapshotError::Truncated { .. }), "{e}");
}

#[test]
fn corrupted_tensor_data() {
    let e = open_modified(|b| {
        let i = b.len() - 12345;
        b[i] ^= 0x40;
    });
    assert!(matches!(e, SnapshotError::DataChecksum { .. }), "{e}");
}

#[test]
fn corrupted_header() {
    let e = open_modified(|b| b[40] ^= 1);
    assert!(matches!(e, SnapshotError::HeaderChecksum), "{e}");
}

#[test]
fn newer_format_version() {
    let e = open_modified(|b| b[8..12].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes()));
    assert!(matches!(e, SnapshotError::UnsupportedVersion { found, .. } if found == FORMAT_VERSION + 1), "{e}");
    assert!(e.to_string().contains("model-prep"), "the message says how to fix it: {e}");
}

#[test]
fn not_a_snapshot() {
    let e = open_modified(|b| b[..8].copy_from_slice(b"GGUF\0\0\0\0"));
    assert!(matches!(e, SnapshotError::BadMagic), "{e}");
}

#[test]
fn trailing_garbage() {
    let e = open_modified(|b| b.extend_from_slice(&[0; 7]));
    assert!(matches!(e, SnapshotError::TrailingBytes { extra: 7 }), "{e}");
}

#[test]
fn missing_file_names_the_path() {
    let e = Embedder::from_snapshot(std::path::Path::new("/nonexistent/model.snap")).unwrap_err();
    assert!(matches!(e, EmbedError::Snapshot(SnapshotError::Open { .. })));
    assert!(e.to_string().contains("/nonexistent/model.snap"), "{e}");
}

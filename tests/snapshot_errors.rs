//! A damaged or foreign snapshot is rejected with its own error, never mis-read.

use snapembed::engine::snapshot::{Snapshot, SnapshotError, FORMAT_VERSION};
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
fn older_format_version() {
    // Version 1 stored int8 weights in another layout: reading it would compute garbage.
    let e = open_modified(|b| b[8..12].copy_from_slice(&1u32.to_le_bytes()));
    assert!(matches!(e, SnapshotError::UnsupportedVersion { found: 1, supported: FORMAT_VERSION }), "{e}");
    assert!(e.to_string().contains("rebuild it with model-prep"), "the message says how to fix it: {e}");
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

/// Rewrites the header with `edit` and a correct checksum: a header can be intact and still lie.
fn open_with_header(edit: impl FnOnce(&mut snapembed::engine::snapshot::Header)) -> Result<Embedder, EmbedError> {
    let bytes = std::fs::read(snapshot_path()).unwrap();
    let header_len = u32::from_le_bytes(bytes[12..16].try_into().unwrap()) as usize;
    let cfg = bincode::config::standard();
    let (mut header, _): (snapembed::engine::snapshot::Header, usize) =
        bincode::serde::decode_from_slice(&bytes[24..24 + header_len], cfg).unwrap();
    let data = bytes[bytes.len() - header.data_len as usize..].to_vec();
    edit(&mut header);
    let encoded = bincode::serde::encode_to_vec(&header, cfg).unwrap();
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(encoded.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&encoded).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&encoded);
    out.resize(out.len().div_ceil(64) * 64, 0);
    out.extend_from_slice(&data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lying.snap");
    std::fs::write(&path, &out).unwrap();
    Embedder::from_snapshot(&path)
}

fn snapshot_error(r: Result<Embedder, EmbedError>) -> SnapshotError {
    match r.unwrap_err() {
        EmbedError::Snapshot(s) | EmbedError::Model(snapembed::engine::model::ModelError::Snapshot(s)) => s,
        other => panic!("expected a snapshot error, got {other}"),
    }
}

#[test]
fn a_harmless_rewrite_still_loads() {
    // The rewriting helper must produce a valid file, or the lies below would prove nothing.
    let e = open_with_header(|h| h.model.name = "renamed".into()).unwrap();
    assert_eq!(e.header().model.name, "renamed");
    assert_eq!(e.embed(&["hello"]).unwrap()[0].len(), 384);
}

#[test]
fn tensor_table_lies_are_caught() {
    let e = snapshot_error(open_with_header(|h| h.tensors[3].offset += 8));
    assert!(matches!(e, SnapshotError::Misaligned { .. }), "{e}");
    let e = snapshot_error(open_with_header(|h| {
        let t = h.tensors.last_mut().unwrap();
        t.offset += 64;
    }));
    assert!(matches!(e, SnapshotError::OutOfBounds { .. }), "{e}");
    let e = snapshot_error(open_with_header(|h| h.tensors[3].shape[0] += 1));
    assert!(matches!(e, SnapshotError::SizeMismatch { .. }), "{e}");
    let e = snapshot_error(open_with_header(|h| h.tensors.retain(|t| t.name != "layer.2.ffn.output.bias")));
    assert!(matches!(&e, SnapshotError::MissingTensor(n) if n == "layer.2.ffn.output.bias"), "{e}");
}

#[test]
fn int8_weights_must_be_quad_panels_with_a_group_of_four_k() {
    use snapembed::engine::model::ModelError;
    use snapembed::engine::snapshot::{DType, Layout};
    // A format-2 header that declares int8 weights in plain panels (format 1's layout).
    let e = snapshot_error(open_with_header(|h| {
        let t = h.tensors.iter_mut().find(|t| t.dtype == DType::I8 && t.layout == Layout::QuadPanels).unwrap();
        t.layout = Layout::Panels;
    }));
    assert!(matches!(&e, SnapshotError::TensorMismatch { expected, found, .. } if expected.contains("QuadPanels") && found.contains("Panels")), "{e}");
    // A group that divides k (384) but is no multiple of the quad's four k.
    match open_with_header(|h| h.quantization.group_size = 6) {
        Err(EmbedError::Model(ModelError::Plan(msg))) => assert!(msg.contains("multiple of 4"), "{msg}"),
        Err(other) => panic!("expected a plan error, got {other}"),
        Ok(_) => panic!("a group of 6 was accepted"),
    }
}

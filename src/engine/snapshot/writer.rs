//! Lays out a snapshot file: preamble, header, then each tensor padded to `ALIGNMENT`.
//! Deterministic: the output depends only on the header fields and tensors given, in order.

use super::format::*;
use super::{align_up, bincode_config};

/// A tensor to write: its table entry (offset and size are filled in) and its bytes.
pub struct TensorData {
    pub name: String,
    pub dtype: DType,
    pub layout: Layout,
    pub shape: Vec<u64>,
    pub bytes: Vec<u8>,
}

/// Collects tensors in order and serializes the snapshot to bytes.
pub struct SnapshotWriter {
    tensors: Vec<TensorData>,
}

impl Default for SnapshotWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotWriter {
    pub fn new() -> Self {
        SnapshotWriter { tensors: Vec::new() }
    }

    pub fn push(&mut self, tensor: TensorData) {
        self.tensors.push(tensor);
    }

    /// Serializes everything. `header.tensors`, `data_len` and `data_crc32` are overwritten.
    pub fn finish(self, mut header: Header) -> Result<Vec<u8>, bincode::error::EncodeError> {
        let mut data = Vec::new();
        header.tensors.clear();
        for t in self.tensors {
            let offset = align_up(data.len());
            data.resize(offset, 0);
            data.extend_from_slice(&t.bytes);
            header.tensors.push(TensorInfo {
                name: t.name,
                dtype: t.dtype,
                layout: t.layout,
                shape: t.shape,
                offset: offset as u64,
                nbytes: t.bytes.len() as u64,
            });
        }
        header.data_len = data.len() as u64;
        header.data_crc32 = crc32fast::hash(&data);
        let header_bytes = bincode::serde::encode_to_vec(&header, bincode_config())?;
        let mut out = Vec::with_capacity(align_up(PREAMBLE_LEN + header_bytes.len()) + data.len());
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&(header_bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32fast::hash(&header_bytes).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&header_bytes);
        out.resize(align_up(out.len()), 0);
        out.extend_from_slice(&data);
        Ok(out)
    }
}

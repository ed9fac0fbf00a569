//! Opens a snapshot: maps the file (or borrows bytes compiled into the binary), validates it once
//! and hands out borrowed tensor slices. The only `unsafe` here is the mapping itself.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::format::*;
use super::{align_up, bincode_config};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("cannot open snapshot {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("not a snapshembed snapshot (bad magic bytes)")]
    BadMagic,
    #[error("snapshot format version {found} is not supported (this build reads version {supported}); rebuild it with model-prep")]
    UnsupportedVersion { found: u32, supported: u32 },
    #[error("snapshot is truncated: {needed} bytes needed, {len} present")]
    Truncated { needed: u64, len: u64 },
    #[error("snapshot has {extra} unexpected trailing bytes")]
    TrailingBytes { extra: u64 },
    #[error("snapshot header checksum mismatch (file corrupted)")]
    HeaderChecksum,
    #[error("snapshot header cannot be decoded")]
    HeaderDecode(#[source] bincode::error::DecodeError),
    #[error("snapshot tensor data checksum mismatch (file corrupted): expected {expected:#010x}, found {found:#010x}")]
    DataChecksum { expected: u32, found: u32 },
    #[error("tensor {name}: offset {offset} is not a multiple of {ALIGNMENT}")]
    Misaligned { name: String, offset: u64 },
    #[error("tensor {name}: bytes {offset}..{end} lie outside the {data_len}-byte data section")]
    OutOfBounds { name: String, offset: u64, end: u64, data_len: u64 },
    #[error("tensor {name}: shape {shape:?} of {dtype:?} needs {expected} bytes, table says {nbytes}")]
    SizeMismatch { name: String, shape: Vec<u64>, dtype: DType, expected: u64, nbytes: u64 },
    #[error("tensor {0} is missing from the snapshot")]
    MissingTensor(String),
    #[error("tensor {name}: expected {expected}, found {found}")]
    TensorMismatch { name: String, expected: String, found: String },
    #[error("snapshot is inconsistent: {0}")]
    Invalid(String),
}

enum Bytes {
    Mapped(Mmap),
    Static(&'static [u8]),
}

impl std::ops::Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Mapped(m) => m,
            Bytes::Static(s) => s,
        }
    }
}

/// A validated snapshot. Tensor views borrow from it.
pub struct Snapshot {
    bytes: Bytes,
    header: Header,
    data_start: usize,
    source: String,
}

/// A tensor's index in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TensorId(usize);

/// A tensor's table entry and its bytes.
#[derive(Clone, Copy)]
pub struct TensorView<'a> {
    pub info: &'a TensorInfo,
    pub bytes: &'a [u8],
}

impl Snapshot {
    /// Maps `path` and validates it, including the data checksum.
    pub fn open(path: &Path) -> Result<Self, SnapshotError> {
        let open_err = |source| SnapshotError::Open { path: path.to_owned(), source };
        let file = File::open(path).map_err(open_err)?;
        // SAFETY: the mapping is read-only and snapshot files are immutable build artifacts;
        // a file truncated by another process while mapped would fault, which is the documented
        // limit of memory-mapping (the same contract as every mmap-based model loader).
        // Populated at once: the checksum and the first embedding touch every page anyway, and
        // one MAP_POPULATE is cheaper than thousands of page faults.
        let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }.map_err(open_err)?;
        Self::validate(Bytes::Mapped(map), path.display().to_string())
    }

    /// Validates bytes that live for the whole program (a snapshot compiled into the binary).
    /// They must start at an address aligned to `ALIGNMENT`.
    pub fn from_static(bytes: &'static [u8], source: &str) -> Result<Self, SnapshotError> {
        if !(bytes.as_ptr() as usize).is_multiple_of(ALIGNMENT) {
            return Err(SnapshotError::Invalid("embedded snapshot bytes are not 64-byte aligned".into()));
        }
        Self::validate(Bytes::Static(bytes), source.to_owned())
    }

    fn validate(bytes: Bytes, source: String) -> Result<Self, SnapshotError> {
        let all: &[u8] = &bytes;
        let (header, data_start) = parse_header(all)?;
        let data = &all[data_start..];
        let found = crc32fast::hash(data);
        if found != header.data_crc32 {
            return Err(SnapshotError::DataChecksum { expected: header.data_crc32, found });
        }
        for t in &header.tensors {
            check_tensor(t, header.data_len)?;
        }
        Ok(Snapshot { bytes, header, data_start, source })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Where the snapshot came from: a path, or `embedded`.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Size of the whole file in bytes (a validated snapshot is never empty).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_mapped(&self) -> bool {
        matches!(self.bytes, Bytes::Mapped(_))
    }

    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>, SnapshotError> {
        let id = self.tensor_id(name)?;
        Ok(self.view(id))
    }

    /// The index of a tensor in the table: a cheap handle for repeated access.
    pub fn tensor_id(&self, name: &str) -> Result<TensorId, SnapshotError> {
        self.header
            .tensors
            .iter()
            .position(|t| t.name == name)
            .map(TensorId)
            .ok_or_else(|| SnapshotError::MissingTensor(name.to_owned()))
    }

    fn view(&self, id: TensorId) -> TensorView<'_> {
        let info = &self.header.tensors[id.0];
        // Bounds were checked in `validate`.
        let start = self.data_start + info.offset as usize;
        TensorView { info, bytes: &self.bytes[start..start + info.nbytes as usize] }
    }

    /// The f32 data of a tensor whose dtype was checked with `expect`. Offsets are multiples of
    /// `ALIGNMENT` from a page-aligned (or 64-byte-aligned static) base, so the cast cannot fail.
    pub fn f32_data(&self, id: TensorId) -> &[f32] {
        bytemuck::cast_slice(self.view(id).bytes)
    }

    /// The int8 data of a tensor whose dtype was checked with `expect`.
    pub fn i8_data(&self, id: TensorId) -> &[i8] {
        bytemuck::cast_slice(self.view(id).bytes)
    }

    /// The i32 data of a tensor whose dtype was checked with `expect`.
    pub fn i32_data(&self, id: TensorId) -> &[i32] {
        bytemuck::cast_slice(self.view(id).bytes)
    }

    /// A tensor that must have this dtype, layout and shape.
    pub fn expect(
        &self,
        name: &str,
        dtype: DType,
        layout: Layout,
        shape: &[u64],
    ) -> Result<TensorView<'_>, SnapshotError> {
        let view = self.tensor(name)?;
        let info = view.info;
        if info.dtype != dtype || info.layout != layout || info.shape != shape {
            return Err(SnapshotError::TensorMismatch {
                name: name.to_owned(),
                expected: format!("{dtype:?} {layout:?} {shape:?}"),
                found: format!("{:?} {:?} {:?}", info.dtype, info.layout, info.shape),
            });
        }
        Ok(view)
    }

    /// The handle of a tensor that must have this dtype, layout and shape.
    pub fn expect_id(&self, name: &str, dtype: DType, layout: Layout, shape: &[u64]) -> Result<TensorId, SnapshotError> {
        self.expect(name, dtype, layout, shape)?;
        self.tensor_id(name)
    }
}

/// Most bytes the header's strings and lists may claim while decoding: bincode allocates a
/// declared length before reading it, so a forged one must fail as `HeaderDecode`, not abort
/// (the corpus index's reader had that bug; bench/fuzz.sh found it). The real header is 6.7 KB.
pub const HEADER_DECODE_LIMIT: usize = 1 << 20;

/// Reads and checks the preamble and header; returns the header and where the data starts.
fn parse_header(all: &[u8]) -> Result<(Header, usize), SnapshotError> {
    let len = all.len() as u64;
    if all.len() < PREAMBLE_LEN {
        if all.len() >= MAGIC.len() && all[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        return Err(SnapshotError::Truncated { needed: PREAMBLE_LEN as u64, len });
    }
    if all[..8] != MAGIC {
        return Err(SnapshotError::BadMagic);
    }
    let word = |i: usize| u32::from_le_bytes([all[i], all[i + 1], all[i + 2], all[i + 3]]);
    let version = word(8);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion { found: version, supported: FORMAT_VERSION });
    }
    let header_len = word(12) as usize;
    let header_crc = word(16);
    let header_end = PREAMBLE_LEN + header_len;
    if all.len() < header_end {
        return Err(SnapshotError::Truncated { needed: header_end as u64, len });
    }
    let header_bytes = &all[PREAMBLE_LEN..header_end];
    if crc32fast::hash(header_bytes) != header_crc {
        return Err(SnapshotError::HeaderChecksum);
    }
    let (header, used): (Header, usize) =
        bincode::serde::decode_from_slice(header_bytes, bincode_config().with_limit::<HEADER_DECODE_LIMIT>())
            .map_err(SnapshotError::HeaderDecode)?;
    if used != header_len {
        return Err(SnapshotError::Invalid(format!("header is {header_len} bytes but decodes from {used}")));
    }
    let data_start = align_up(header_end);
    let needed = data_start as u64 + header.data_len;
    if len < needed {
        return Err(SnapshotError::Truncated { needed, len });
    }
    if len > needed {
        return Err(SnapshotError::TrailingBytes { extra: len - needed });
    }
    Ok((header, data_start))
}

fn check_tensor(t: &TensorInfo, data_len: u64) -> Result<(), SnapshotError> {
    if !t.offset.is_multiple_of(ALIGNMENT as u64) {
        return Err(SnapshotError::Misaligned { name: t.name.clone(), offset: t.offset });
    }
    let end = t.offset.saturating_add(t.nbytes);
    if end > data_len {
        return Err(SnapshotError::OutOfBounds { name: t.name.clone(), offset: t.offset, end, data_len });
    }
    let expected = t.element_count().and_then(|n| n.checked_mul(t.dtype.size() as u64));
    if expected != Some(t.nbytes) {
        return Err(SnapshotError::SizeMismatch {
            name: t.name.clone(),
            shape: t.shape.clone(),
            dtype: t.dtype,
            expected: expected.unwrap_or(u64::MAX),
            nbytes: t.nbytes,
        });
    }
    Ok(())
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("source", &self.source)
            .field("len", &self.len())
            .field("model", &self.header.model.name)
            .finish()
    }
}

//! Turning a fuzzer's input into the file a reader sees (raw, or with the checksums and sizes
//! fixed up so mutations reach the checks behind them), or into the request the router sees.
//! Pure functions of their bytes, shared by
//! the fuzz targets (through `lib.rs`) and by tests/fuzz_regressions.rs (through `#[path]`), so a
//! kept finding is read exactly as the fuzzer made it.

use snapembed::engine::snapshot as snap;
use snapembed::search::format as idx;

/// Both formats align their data section (and every table in it) to 64 bytes.
pub const ALIGNMENT: usize = 64;
const PREAMBLE_LEN: usize = 24;

fn align_up(n: usize) -> usize {
    n.div_ceil(ALIGNMENT) * ALIGNMENT
}

/// Preamble + header + padding + data, with the header's length and CRC right.
pub fn assemble(magic: &[u8; 8], header: &[u8], data: &[u8]) -> Vec<u8> {
    let version = if *magic == snap::MAGIC { snap::FORMAT_VERSION } else { idx::FORMAT_VERSION };
    let mut out = Vec::with_capacity(align_up(PREAMBLE_LEN + header.len()) + data.len());
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(header).to_le_bytes());
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(header);
    out.resize(align_up(out.len()), 0);
    out.extend_from_slice(data);
    out
}

/// The header bytes and data bytes of a file laid out as preamble | header | pad | data, as
/// far as the preamble's header length allows (no checks: the fuzzer may have broken it).
pub fn split(file: &[u8]) -> Option<(&[u8], &[u8])> {
    if file.len() < PREAMBLE_LEN {
        return None;
    }
    let header_len = u32::from_le_bytes([file[12], file[13], file[14], file[15]]) as usize;
    let header_end = PREAMBLE_LEN.checked_add(header_len)?;
    let header = file.get(PREAMBLE_LEN..header_end)?;
    let data = file.get(align_up(header_end).min(file.len())..)?;
    Some((header, data))
}

pub fn bincode_config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// How a snapshot input becomes a file: the first byte picks the mode.
/// - 0: the rest is the whole file (preamble checks, truncation, anything);
/// - 1: the rest is a header, placed in front of the real tensor data with a correct
///   preamble (the table of contents of the real file, mutated in place);
/// - 2: as 1, and when the header decodes its `data_len`/`data_crc32` are set to the real
///   data's, so the checks behind the checksums (offsets, shapes, the model's tensors) run.
///
/// `data` is the real snapshot's tensor data.
pub fn snapshot_file(input: &[u8], data: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = input.split_first()?;
    match mode % 3 {
        0 => Some(rest.to_vec()),
        1 => Some(assemble(&snap::MAGIC, rest, data)),
        _ => {
            let Ok((mut header, _)) = bincode::serde::decode_from_slice::<snap::Header, _>(rest, bincode_config().with_limit::<{ 1 << 20 }>()) else {
                // Undecodable: still give the reader's decoder these bytes behind a right CRC.
                return Some(assemble(&snap::MAGIC, rest, data));
            };
            header.data_len = data.len() as u64;
            header.data_crc32 = crc32fast::hash(data);
            let bytes = bincode::serde::encode_to_vec(&header, bincode_config()).ok()?;
            Some(assemble(&snap::MAGIC, &bytes, data))
        }
    }
}

/// How an index input becomes a file: the first byte picks the mode.
/// - even: the rest is the whole file;
/// - odd: the rest is a file whose header (when it decodes) gets `data_len` and `data_crc32`
///   of its own data section, and the preamble its right length and CRC.
pub fn index_file(input: &[u8]) -> Option<Vec<u8>> {
    let (&mode, rest) = input.split_first()?;
    if mode % 2 == 0 {
        return Some(rest.to_vec());
    }
    let (header, data) = split(rest)?;
    let Ok((mut header, _)) = bincode::serde::decode_from_slice::<idx::IndexHeader, _>(header, bincode_config().with_limit::<{ 1 << 20 }>()) else {
        // Undecodable: still give the reader's decoder these bytes behind a right CRC.
        return Some(assemble(&idx::MAGIC, header, data));
    };
    header.data_len = data.len() as u64;
    header.data_crc32 = crc32fast::hash(data);
    // Format 2 checks each section's own CRC too.
    for s in &mut header.sections {
        let range = usize::try_from(s.offset).ok().zip(usize::try_from(s.offset.saturating_add(s.nbytes)).ok());
        if let Some(bytes) = range.and_then(|(a, b)| data.get(a..b)) {
            s.crc32 = crc32fast::hash(bytes);
        }
    }
    let bytes = bincode::serde::encode_to_vec(&header, bincode_config()).ok()?;
    Some(assemble(&idx::MAGIC, &bytes, data))
}

/// The http target's routes: the input's first byte picks one.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/embed"),
    ("POST", "/v1/embeddings"),
    ("POST", "/similarity"),
    ("POST", "/search"),
    ("POST", "/score"),
    ("POST", "/rank"),
    ("POST", "/webhook/tally"),
    ("GET", "/health"),
    ("POST", "/embed?x=1"),
];

/// The http target's Content-Types: the input's second byte picks one (the seeds' multipart
/// bodies pick index 5).
pub const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    None,
    Some("text/plain"),
    Some("application/vnd.api+json"),
    Some("multipart/form-data; boundary=fuzz"),
];

/// An http input as (method, path, Content-Type, body); `None` below two bytes.
pub fn http_request(input: &[u8]) -> Option<(&'static str, &'static str, Option<&'static str>, &[u8])> {
    let [route, ctype, body @ ..] = input else { return None };
    let (method, path) = ROUTES[*route as usize % ROUTES.len()];
    Some((method, path, CONTENT_TYPES[*ctype as usize % CONTENT_TYPES.len()], body))
}

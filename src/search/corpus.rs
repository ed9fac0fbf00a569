//! Reading a corpus: JSON Lines (`{"id", "text", "title"?, "metadata"?}` per line) or CSV with a
//! header (a text column, an id column, every other column a metadata string). A bad record is
//! reported with its line number, skipped and counted; `strict` makes the first one fatal.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// One document to index.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub id: String,
    pub text: String,
    /// A JSON object; a JSON Lines `title` is kept here as `title`.
    pub metadata: Map<String, Value>,
    /// Line where the record starts (1-based).
    pub line: u64,
}

impl Document {
    pub fn title(&self) -> Option<&str> {
        self.metadata.get("title").and_then(Value::as_str)
    }
}

/// What is wrong with one record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Problem {
    #[error("malformed record: {0}")]
    Malformed(String),
    #[error("field {field} is missing")]
    Missing { field: &'static str },
    #[error("field {field} must be {expected}")]
    WrongType { field: &'static str, expected: &'static str },
    #[error("the text is empty")]
    EmptyText,
    #[error("the id is empty")]
    EmptyId,
    #[error("duplicate id {id:?} (first on line {first_line})")]
    DuplicateId { id: String, first_line: u64 },
}

/// A problem and the line it is on.
#[derive(Debug, Clone, PartialEq)]
pub struct LineProblem {
    pub line: u64,
    pub problem: Problem,
}

impl std::fmt::Display for LineProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    #[error("cannot read corpus {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {problem} (--strict)")]
    Strict { path: PathBuf, problem: LineProblem },
    #[error("{path}: the CSV header has no column {column:?} (columns: {columns})")]
    MissingColumn { path: PathBuf, column: String, columns: String },
    #[error("{path}: the CSV header cannot be read")]
    CsvHeader {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    #[error("{path}: no documents to index ({skipped} records skipped)")]
    Empty { path: PathBuf, skipped: usize },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv { text_column: String, id_column: String },
}

/// Documents in file order and the records skipped.
#[derive(Debug, Default)]
pub struct Loaded {
    pub documents: Vec<Document>,
    pub problems: Vec<LineProblem>,
}

/// Reads a whole corpus file.
pub fn load(path: &Path, format: &Format, strict: bool) -> Result<Loaded, CorpusError> {
    let read_err = |source| CorpusError::Read { path: path.to_owned(), source };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut out = Collector { loaded: Loaded::default(), seen: HashMap::new(), strict, path };
    match format {
        Format::JsonLines => read_jsonl(BufReader::new(file), &mut out).map_err(read_err)??,
        Format::Csv { text_column, id_column } => read_csv(file, text_column, id_column, &mut out)?,
    }
    if out.loaded.documents.is_empty() {
        return Err(CorpusError::Empty { path: path.to_owned(), skipped: out.loaded.problems.len() });
    }
    Ok(out.loaded)
}

struct Collector<'a> {
    loaded: Loaded,
    /// id → first line.
    seen: HashMap<String, u64>,
    strict: bool,
    path: &'a Path,
}

impl Collector<'_> {
    fn record(&mut self, line: u64, doc: Result<Document, Problem>) -> Result<(), CorpusError> {
        let doc = doc.and_then(|d| match self.seen.get(&d.id) {
            Some(&first_line) => Err(Problem::DuplicateId { id: d.id, first_line }),
            None => Ok(d),
        });
        match doc {
            Ok(d) => {
                self.seen.insert(d.id.clone(), line);
                self.loaded.documents.push(d);
                Ok(())
            }
            Err(problem) => {
                let p = LineProblem { line, problem };
                if self.strict {
                    return Err(CorpusError::Strict { path: self.path.to_owned(), problem: p });
                }
                self.loaded.problems.push(p);
                Ok(())
            }
        }
    }
}

fn read_jsonl(mut r: impl BufRead, out: &mut Collector<'_>) -> std::io::Result<Result<(), CorpusError>> {
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 {
            return Ok(Ok(()));
        }
        line += 1;
        let raw = match std::str::from_utf8(&buf) {
            Ok(s) => s.trim(),
            Err(e) => {
                if let Err(e) = out.record(line, Err(Problem::Malformed(format!("not UTF-8 ({e})")))) {
                    return Ok(Err(e));
                }
                continue;
            }
        };
        if raw.is_empty() {
            continue;
        }
        if let Err(e) = out.record(line, parse_json_record(raw, line)) {
            return Ok(Err(e));
        }
    }
}

fn parse_json_record(raw: &str, line: u64) -> Result<Document, Problem> {
    let value: Value = serde_json::from_str(raw).map_err(|e| Problem::Malformed(format!("invalid JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(Problem::WrongType { field: "record", expected: "a JSON object" });
    };
    let id = match obj.remove("id") {
        None | Some(Value::Null) => return Err(Problem::Missing { field: "id" }),
        Some(Value::String(s)) => s,
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => n.to_string(),
        Some(_) => return Err(Problem::WrongType { field: "id", expected: "a string or an integer" }),
    };
    let text = match obj.remove("text") {
        None | Some(Value::Null) => return Err(Problem::Missing { field: "text" }),
        Some(Value::String(s)) => s,
        Some(_) => return Err(Problem::WrongType { field: "text", expected: "a string" }),
    };
    let mut metadata = match obj.remove("metadata") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Problem::WrongType { field: "metadata", expected: "a JSON object" }),
    };
    match obj.remove("title") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) => {
            metadata.entry("title").or_insert(Value::String(t));
        }
        Some(_) => return Err(Problem::WrongType { field: "title", expected: "a string" }),
    }
    check(Document { id, text, metadata, line })
}

fn check(d: Document) -> Result<Document, Problem> {
    if d.id.trim().is_empty() {
        return Err(Problem::EmptyId);
    }
    if d.text.trim().is_empty() {
        return Err(Problem::EmptyText);
    }
    Ok(d)
}

fn read_csv(file: impl Read, text_column: &str, id_column: &str, out: &mut Collector<'_>) -> Result<(), CorpusError> {
    let path = out.path.to_owned();
    let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(file);
    let headers = rdr.byte_headers().map_err(|source| CorpusError::CsvHeader { path: path.clone(), source })?.clone();
    let names: Vec<String> = headers.iter().map(|h| String::from_utf8_lossy(h).trim().to_owned()).collect();
    let column = |want: &str| {
        names.iter().position(|n| n == want).ok_or_else(|| CorpusError::MissingColumn {
            path: path.clone(),
            column: want.to_owned(),
            columns: names.join(", "),
        })
    };
    let (text_at, id_at) = (column(text_column)?, column(id_column)?);
    let mut record = csv::ByteRecord::new();
    loop {
        let (line, parsed) = match rdr.read_byte_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = record.position().map_or(0, |p| p.line());
                (line, csv_record(&record, &names, text_at, id_at, line))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let problem = Problem::Malformed(match e.kind() {
                    csv::ErrorKind::Io(io) => return Err(CorpusError::Read { path, source: std::io::Error::new(io.kind(), io.to_string()) }),
                    _ => e.to_string(),
                });
                (line, Err(problem))
            }
        };
        out.record(line, parsed)?;
    }
}

fn csv_record(record: &csv::ByteRecord, names: &[String], text_at: usize, id_at: usize, line: u64) -> Result<Document, Problem> {
    if record.len() != names.len() {
        return Err(Problem::Malformed(format!("{} fields, the header has {}", record.len(), names.len())));
    }
    let field = |i: usize| std::str::from_utf8(&record[i]).map_err(|_| Problem::Malformed(format!("column {:?} is not UTF-8", names[i])));
    let id = field(id_at)?.trim().to_owned();
    let text = field(text_at)?.to_owned();
    let mut metadata = Map::new();
    for (i, name) in names.iter().enumerate() {
        if i == id_at || i == text_at {
            continue;
        }
        let v = field(i)?;
        // An empty cell is an absent value, not the empty string.
        if !v.is_empty() {
            metadata.insert(name.clone(), Value::String(v.to_owned()));
        }
    }
    check(Document { id, text, metadata, line })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jsonl(text: &str, strict: bool) -> Result<Loaded, CorpusError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.jsonl");
        std::fs::write(&path, text).unwrap();
        load(&path, &Format::JsonLines, strict)
    }

    #[test]
    fn every_bad_jsonl_record_is_skipped_with_its_line() {
        let text = [
            r#"{"id": "a", "text": "first", "title": "T", "metadata": {"category": "billing"}}"#,
            r#"{"id": "b", "text": "   "}"#,
            r#"{"id": "a", "text": "again"}"#,
            r#"{"id": "c", "text": "oops""#,
            r#"{"id": ["x"], "text": "t"}"#,
            r#"{"id": "d", "text": 5}"#,
            r#"{"id": "e", "text": "t", "metadata": "m"}"#,
            r#"{"text": "no id"}"#,
            r#"[1, 2]"#,
            "",
            r#"{"id": 7, "text": "numeric id"}"#,
        ]
        .join("\n");
        let loaded = jsonl(&text, false).unwrap();
        let ids: Vec<&str> = loaded.documents.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["a", "7"]);
        assert_eq!(loaded.documents[0].title(), Some("T"));
        assert_eq!(loaded.documents[1].line, 11);
        let lines: Vec<(u64, &Problem)> = loaded.problems.iter().map(|p| (p.line, &p.problem)).collect();
        assert_eq!(lines.len(), 8);
        assert_eq!(lines[0], (2, &Problem::EmptyText));
        assert_eq!(lines[1], (3, &Problem::DuplicateId { id: "a".into(), first_line: 1 }));
        assert!(matches!(lines[2], (4, Problem::Malformed(_))));
        assert_eq!(lines[3], (5, &Problem::WrongType { field: "id", expected: "a string or an integer" }));
        assert_eq!(lines[4], (6, &Problem::WrongType { field: "text", expected: "a string" }));
        assert_eq!(lines[5], (7, &Problem::WrongType { field: "metadata", expected: "a JSON object" }));
        assert_eq!(lines[6], (8, &Problem::Missing { field: "id" }));
        assert_eq!(lines[7], (9, &Problem::WrongType { field: "record", expected: "a JSON object" }));
        let err = jsonl(&text, true).unwrap_err().to_string();
        assert!(err.contains("line 2: the text is empty (--strict)"), "{err}");
    }
}

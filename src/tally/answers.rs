//! Fields → normalized answers (`{label: value}`, option ids replaced by their text) and answers
//! → the text that is searched.
//!
//! Values keep Tally's shape with ids resolved: a list of option ids becomes a list of option
//! texts, a single id a single text, a matrix `{row id: [column ids]}` becomes
//! `{row text: [column texts]}`; numbers, files, signatures and payments stay as sent. An id with
//! no matching option (a MULTIPLE_CHOICE "Other" answer is the typed text itself) is kept as is.
//!
//! The query is, by default, every text-like answer (free text and chosen options) on its own
//! line as `Label: answer`. Contact details, numbers, dates, files, payments and hidden or
//! calculated fields are left out: they say nothing a corpus can match, and emails and phone
//! numbers are personal data that has no business in a search log. A form can instead name the
//! fields to search (by key or label); then only their answers are used, without labels, in
//! the order named.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use super::payload::{Choice, Field, FieldType};

/// One normalized answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub key: String,
    /// Unique within a submission: a repeated label gets " (2)", " (3)"…
    pub label: String,
    pub kind: FieldType,
    pub value: Value,
}

impl Answer {
    /// CHECKBOXES sends the question once with the chosen ids and then once per option as a
    /// boolean (`Label (Option)`); the booleans repeat the question's answer.
    fn is_option_flag(&self) -> bool {
        self.kind == FieldType::Checkboxes && self.value.is_boolean()
    }

    fn is_text_like(&self) -> bool {
        use FieldType::*;
        matches!(self.kind, InputText | Textarea | MultipleChoice | Dropdown | Checkboxes | MultiSelect | Ranking)
            && !self.is_option_flag()
    }
}

/// Answers in form order, serialized as a JSON object `{label: value}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answers(pub Vec<Answer>);

impl Serialize for Answers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for a in &self.0 {
            map.serialize_entry(&a.label, &a.value)?;
        }
        map.end()
    }
}

/// Which answers make the query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum QueryFields {
    /// Every text-like answer, each as `Label: answer`.
    #[default]
    TextLike,
    /// These fields (by key, or by label ignoring case), answers only, in this order.
    Named(Vec<String>),
}

impl QueryFields {
    /// From `SNAPEMBED_TALLY_FIELDS`' items; none (or only blanks) means the default.
    pub fn from_names<I: IntoIterator<Item = S>, S: AsRef<str>>(names: I) -> QueryFields {
        let names: Vec<String> =
            names.into_iter().map(|n| n.as_ref().trim().to_owned()).filter(|n| !n.is_empty()).collect();
        if names.is_empty() {
            QueryFields::TextLike
        } else {
            QueryFields::Named(names)
        }
    }
}

pub fn normalize(fields: &[Field]) -> Answers {
    let mut out: Vec<Answer> = Vec::with_capacity(fields.len());
    for f in fields {
        let value = resolve(f);
        let base = f.label();
        let mut label = base.to_owned();
        let mut n = 1;
        while out.iter().any(|a| a.label == label) {
            n += 1;
            label = format!("{base} ({n})");
        }
        out.push(Answer { key: f.key.clone(), label, kind: f.kind.clone(), value });
    }
    Answers(out)
}

fn resolve(f: &Field) -> Value {
    use FieldType::*;
    match f.kind {
        MultipleChoice | Dropdown | Checkboxes | MultiSelect | Ranking => match &f.options {
            Some(options) => ids_to_text(&f.value, options),
            None => f.value.clone(),
        },
        Matrix => match (&f.value, &f.rows, &f.columns) {
            (Value::Object(cells), Some(rows), Some(columns)) => {
                let mut out = Map::new();
                for (row, picked) in cells {
                    out.insert(text_of(row, rows).to_owned(), ids_to_text(picked, columns));
                }
                Value::Object(out)
            }
            _ => f.value.clone(),
        },
        _ => f.value.clone(),
    }
}

fn text_of<'a>(id: &'a str, choices: &'a [Choice]) -> &'a str {
    choices.iter().find(|c| c.id == id).map_or(id, |c| c.text.as_str())
}

fn ids_to_text(value: &Value, choices: &[Choice]) -> Value {
    match value {
        Value::String(id) => Value::String(text_of(id, choices).to_owned()),
        Value::Array(ids) => Value::Array(ids.iter().map(|v| ids_to_text(v, choices)).collect()),
        other => other.clone(),
    }
}

/// The text to search with; empty when no selected answer has any text.
pub fn query_text(answers: &Answers, fields: &QueryFields) -> String {
    let mut lines = Vec::new();
    match fields {
        QueryFields::TextLike => {
            for a in answers.0.iter().filter(|a| a.is_text_like()) {
                let text = value_text(&a.value);
                if !text.is_empty() {
                    lines.push(format!("{}: {text}", a.label));
                }
            }
        }
        QueryFields::Named(names) => {
            for name in names {
                let found = answers.0.iter().find(|a| a.key == *name).or_else(|| {
                    answers.0.iter().find(|a| a.label.eq_ignore_ascii_case(name))
                });
                if let Some(a) = found {
                    let text = value_text(&a.value);
                    if !text.is_empty() {
                        lines.push(text);
                    }
                }
            }
        }
    }
    lines.join("\n")
}

/// An answer as plain text: lists joined with ", ", a matrix as "row: columns; …", a file by its
/// name.
fn value_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.trim().to_owned(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Number(n) => n.to_string(),
        Value::Array(items) => {
            items.iter().map(value_text).filter(|t| !t.is_empty()).collect::<Vec<_>>().join(", ")
        }
        Value::Object(map) => match map.get("name") {
            Some(Value::String(name)) => name.trim().to_owned(),
            _ => map
                .iter()
                .map(|(k, v)| (k, value_text(v)))
                .filter(|(_, t)| !t.is_empty())
                .map(|(k, t)| format!("{k}: {t}"))
                .collect::<Vec<_>>()
                .join("; "),
        },
    }
}

/// Cuts `text` to at most `max_chars` characters, at a character boundary.
pub fn truncate_chars(text: &mut String, max_chars: usize) -> bool {
    match text.char_indices().nth(max_chars) {
        Some((cut, _)) => {
            text.truncate(cut);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::json;

    use super::*;

    fn field(v: Value) -> Field {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn option_ids_become_their_text_and_unknown_ids_stay() {
        let f = field(json!({"key": "q", "label": "Topic", "type": "MULTIPLE_CHOICE",
            "value": ["a", "typed by hand"], "options": [{"id": "a", "text": "Billing"}, {"id": "b", "text": "Login"}]}));
        assert_eq!(normalize(&[f]).0[0].value, json!(["Billing", "typed by hand"]));
        let f = field(json!({"key": "q", "label": "Plan", "type": "DROPDOWN", "value": "b",
            "options": [{"id": "b", "text": "Team"}]}));
        assert_eq!(normalize(&[f]).0[0].value, json!("Team"));
    }

    #[test]
    fn matrix_rows_and_columns_become_their_text() {
        let f = field(json!({"key": "m", "label": "Rate us", "type": "MATRIX",
            "value": {"r1": ["c2"], "r2": ["c1"]},
            "rows": [{"id": "r1", "text": "Speed"}, {"id": "r2", "text": "Support"}],
            "columns": [{"id": "c1", "text": "Poor"}, {"id": "c2", "text": "Good"}]}));
        let a = normalize(&[f]);
        assert_eq!(a.0[0].value, json!({"Speed": ["Good"], "Support": ["Poor"]}));
        assert_eq!(value_text(&a.0[0].value), "Speed: Good; Support: Poor");
    }

    #[test]
    fn repeated_labels_stay_distinct_in_the_map() {
        let fs = [
            field(json!({"key": "a", "label": "Name", "type": "INPUT_TEXT", "value": "Ana"})),
            field(json!({"key": "b", "label": "Name", "type": "INPUT_TEXT", "value": "Bo"})),
        ];
        let out = serde_json::to_value(normalize(&fs)).unwrap();
        assert_eq!(out, json!({"Name": "Ana", "Name (2)": "Bo"}));
    }

    #[test]
    fn default_query_is_text_like_answers_with_labels_and_skips_the_rest() {
        let fs = [
            field(json!({"key": "e", "label": "Email", "type": "INPUT_EMAIL", "value": "a@b.example"})),
            field(json!({"key": "t", "label": "What happened?", "type": "TEXTAREA", "value": "  The export hangs  "})),
            field(json!({"key": "c", "label": "Areas", "type": "CHECKBOXES", "value": ["x", "y"],
                "options": [{"id": "x", "text": "Exports"}, {"id": "y", "text": "Reports"}]})),
            field(json!({"key": "c_x", "label": "Areas (Exports)", "type": "CHECKBOXES", "value": true})),
            field(json!({"key": "n", "label": "Seats", "type": "INPUT_NUMBER", "value": 12})),
            field(json!({"key": "s", "label": "Anything else?", "type": "INPUT_TEXT", "value": null})),
        ];
        let q = query_text(&normalize(&fs), &QueryFields::TextLike);
        assert_eq!(q, "What happened?: The export hangs\nAreas: Exports, Reports");
    }

    #[test]
    fn named_fields_by_key_or_label_in_the_order_named() {
        let fs = [
            field(json!({"key": "question_a", "label": "Subject", "type": "INPUT_TEXT", "value": "Refund"})),
            field(json!({"key": "question_b", "label": "Details", "type": "TEXTAREA", "value": "Charged twice"})),
            field(json!({"key": "question_c", "label": "Email", "type": "INPUT_EMAIL", "value": "a@b.example"})),
        ];
        let a = normalize(&fs);
        let q = query_text(&a, &QueryFields::from_names(["details", " question_a ", "", "nope"]));
        assert_eq!(q, "Charged twice\nRefund");
        assert_eq!(QueryFields::from_names([" ", ""]), QueryFields::TextLike);
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        let mut s = "héllo wörld".to_owned();
        assert!(truncate_chars(&mut s, 7));
        assert_eq!(s, "héllo w");
        assert!(!truncate_chars(&mut s, 7));
    }
}

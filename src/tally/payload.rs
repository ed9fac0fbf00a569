//! Tally's webhook body: the envelope (`eventId`, `eventType`, `createdAt`, `data`) and the
//! `FORM_RESPONSE` data with its fields, as serde types. Reading happens in two steps so that an
//! event of another type is recognised (and ignored) before its data is required to look like a
//! form response; errors name the JSON path of what is wrong.
//!
//! Each field is `{key, label, type, value, options?, rows?, columns?}`. `value`'s shape depends on
//! the type (a string, a number, a list of option ids, a row → columns map, file objects, a
//! payment object) and may be null, so it stays a JSON value here; [`super::answers`] gives it
//! meaning. A type this code does not know is kept by name and never fails the request.

use serde::Deserialize;
use serde_json::Value;

/// The only event type Tally sends today; anything else is acknowledged and ignored.
pub const FORM_RESPONSE: &str = "FORM_RESPONSE";

/// Longest eventId accepted.
pub const MAX_EVENT_ID_BYTES: usize = 200;

/// Why a body is not a Tally event this service can read.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not valid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    #[error("{path}: {message}")]
    Shape { path: String, message: String },
}

impl PayloadError {
    fn shape<E: std::fmt::Display>(err: serde_path_to_error::Error<E>, prefix: &str) -> PayloadError {
        let path = err.path().to_string();
        let path = match (prefix, path.as_str()) {
            (p, ".") => p.to_owned(),
            ("", q) => q.to_owned(),
            (p, q) => format!("{p}.{q}"),
        };
        let path = if path.is_empty() { "body".to_owned() } else { path };
        PayloadError::Shape { path, message: err.inner().to_string() }
    }
}

/// The envelope common to every event.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub event_id: String,
    pub event_type: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub data: Value,
}

/// `data` of a `FORM_RESPONSE` event.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = TallyFormResponse)]
pub struct FormResponse {
    #[serde(default)]
    pub response_id: Option<String>,
    #[serde(default)]
    pub submission_id: Option<String>,
    #[serde(default)]
    pub respondent_id: Option<String>,
    #[serde(default)]
    pub form_id: Option<String>,
    #[serde(default)]
    pub form_name: Option<String>,
    #[serde(default)]
    pub created_at: Option<String>,
    pub fields: Vec<Field>,
}

/// One answer. `key` is stable across label edits (`question_3EKz4n`; a checkbox option's own
/// boolean field appends the option id); `label` is the question as the respondent saw it.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(as = TallyField)]
pub struct Field {
    pub key: String,
    #[serde(default)]
    pub label: Option<String>,
    /// `INPUT_TEXT`, `TEXTAREA`, `MULTIPLE_CHOICE`, … (an unknown type is kept).
    #[serde(rename = "type")]
    #[schema(value_type = String)]
    pub kind: FieldType,
    /// Absent and `null` both mean "not answered".
    #[serde(default)]
    pub value: Value,
    /// Choices of MULTIPLE_CHOICE, DROPDOWN, CHECKBOXES, MULTI_SELECT and RANKING: `value`
    /// holds their ids.
    #[serde(default)]
    pub options: Option<Vec<Choice>>,
    /// MATRIX: `value` maps a row id to the ids of the columns picked in that row.
    #[serde(default)]
    pub rows: Option<Vec<Choice>>,
    #[serde(default)]
    pub columns: Option<Vec<Choice>>,
}

impl Field {
    /// The label, or the key when Tally sent none (hidden and calculated fields can be unnamed).
    pub fn label(&self) -> &str {
        match self.label.as_deref().map(str::trim) {
            Some(l) if !l.is_empty() => l,
            _ => &self.key,
        }
    }
}

/// An option, a matrix row or a matrix column.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[schema(as = TallyChoice)]
pub struct Choice {
    pub id: String,
    #[serde(default)]
    pub text: String,
}

/// Every field type Tally documents; [`FieldType::Other`] keeps a new one's name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "String")]
pub enum FieldType {
    InputText,
    Textarea,
    InputEmail,
    InputNumber,
    InputPhoneNumber,
    InputLink,
    InputDate,
    InputTime,
    MultipleChoice,
    Checkboxes,
    Dropdown,
    MultiSelect,
    Ranking,
    LinearScale,
    Rating,
    FileUpload,
    Signature,
    Matrix,
    Payment,
    HiddenFields,
    CalculatedFields,
    Other(String),
}

impl From<String> for FieldType {
    fn from(s: String) -> FieldType {
        match s.as_str() {
            "INPUT_TEXT" => FieldType::InputText,
            "TEXTAREA" => FieldType::Textarea,
            "INPUT_EMAIL" => FieldType::InputEmail,
            "INPUT_NUMBER" => FieldType::InputNumber,
            "INPUT_PHONE_NUMBER" => FieldType::InputPhoneNumber,
            "INPUT_LINK" => FieldType::InputLink,
            "INPUT_DATE" => FieldType::InputDate,
            "INPUT_TIME" => FieldType::InputTime,
            "MULTIPLE_CHOICE" => FieldType::MultipleChoice,
            "CHECKBOXES" => FieldType::Checkboxes,
            "DROPDOWN" => FieldType::Dropdown,
            "MULTI_SELECT" => FieldType::MultiSelect,
            "RANKING" => FieldType::Ranking,
            "LINEAR_SCALE" => FieldType::LinearScale,
            "RATING" => FieldType::Rating,
            "FILE_UPLOAD" => FieldType::FileUpload,
            "SIGNATURE" => FieldType::Signature,
            "MATRIX" => FieldType::Matrix,
            "PAYMENT" => FieldType::Payment,
            "HIDDEN_FIELDS" => FieldType::HiddenFields,
            "CALCULATED_FIELDS" => FieldType::CalculatedFields,
            _ => FieldType::Other(s),
        }
    }
}

/// A webhook body, read as far as its event type asks.
#[derive(Debug, Clone)]
pub enum Event {
    FormResponse { envelope: Envelope, data: FormResponse },
    /// Another event type: acknowledged, not processed.
    Other(Envelope),
}

/// Reads a raw body. Call only after the signature has been checked.
pub fn parse(body: &[u8]) -> Result<Event, PayloadError> {
    let value: Value = serde_json::from_slice(body).map_err(PayloadError::Syntax)?;
    // serde would read a struct from an array by position; a Tally event is an object.
    if !value.is_object() {
        return Err(PayloadError::Shape { path: "body".into(), message: "must be a JSON object (a Tally event)".into() });
    }
    let mut envelope: Envelope = serde_path_to_error::deserialize(value).map_err(|e| PayloadError::shape(e, ""))?;
    if envelope.event_id.trim().is_empty() {
        return Err(PayloadError::Shape { path: "eventId".into(), message: "must not be empty".into() });
    }
    // Tally's are UUIDs. The id is remembered (idempotency) and sent as a header: a bound keeps
    // that memory small whatever a sender puts there.
    if envelope.event_id.len() > MAX_EVENT_ID_BYTES {
        return Err(PayloadError::Shape {
            path: "eventId".into(),
            message: format!("is {} bytes long, at most {MAX_EVENT_ID_BYTES} allowed", envelope.event_id.len()),
        });
    }
    if envelope.event_type != FORM_RESPONSE {
        return Ok(Event::Other(envelope));
    }
    if !envelope.data.is_object() {
        return Err(PayloadError::Shape { path: "data".into(), message: "must be an object: a FORM_RESPONSE event carries the response in `data`".into() });
    }
    let data: FormResponse =
        serde_path_to_error::deserialize(envelope.data.take()).map_err(|e| PayloadError::shape(e, "data"))?;
    if data.submission_id.is_none() && data.response_id.is_none() {
        return Err(PayloadError::Shape { path: "data".into(), message: "has neither `submissionId` nor `responseId`".into() });
    }
    Ok(Event::FormResponse { envelope, data })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn err(body: &str) -> String {
        parse(body.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn errors_name_the_path_of_what_is_wrong() {
        assert!(err("{").starts_with("the body is not valid JSON"), "{}", err("{"));
        assert!(err(r#"{"eventType":"FORM_RESPONSE"}"#).contains("eventId"));
        let e = err(r#"{"eventId":"e1","eventType":"FORM_RESPONSE","data":{"submissionId":"s","fields":[{"key":"k","type":7}]}}"#);
        assert!(e.starts_with("data.fields[0].type:"), "{e}");
        let e = err(r#"{"eventId":"e1","eventType":"FORM_RESPONSE","data":{"submissionId":"s"}}"#);
        assert!(e.starts_with("data:") && e.contains("fields"), "{e}");
        let e = err(r#"{"eventId":"e1","eventType":"FORM_RESPONSE"}"#);
        assert!(e.starts_with("data:"), "{e}");
        let e = err(r#"{"eventId":"e1","eventType":"FORM_RESPONSE","data":{"fields":[]}}"#);
        assert!(e.contains("submissionId"), "{e}");
        let e = err(r#"{"eventId":" ","eventType":"FORM_RESPONSE","data":{"fields":[]}}"#);
        assert!(e.starts_with("eventId"), "{e}");
        assert!(err("[1,2]").starts_with("body:"), "{}", err("[1,2]"));
        let long = format!(r#"{{"eventId":"{}","eventType":"FORM_RESPONSE","data":{{"fields":[]}}}}"#, "e".repeat(201));
        assert!(err(&long).starts_with("eventId: is 201 bytes long"), "{}", err(&long));
    }

    #[test]
    fn another_event_type_is_recognised_without_its_data() {
        let ev = parse(br#"{"eventId":"e2","eventType":"FORM_DELETED","data":42}"#).unwrap();
        assert!(matches!(ev, Event::Other(e) if e.event_type == "FORM_DELETED"));
    }

    #[test]
    fn unknown_field_types_keep_their_name_and_missing_values_are_null() {
        let ev = parse(
            br#"{"eventId":"e3","eventType":"FORM_RESPONSE","data":{"responseId":"r","fields":[
                {"key":"q1","label":"Map pin","type":"LOCATION","value":{"lat":1}},
                {"key":"q2","label":"  ","type":"INPUT_TEXT"}]}}"#,
        )
        .unwrap();
        let Event::FormResponse { data, .. } = ev else { panic!("a form response") };
        assert_eq!(data.fields[0].kind, FieldType::Other("LOCATION".into()));
        assert!(data.fields[1].value.is_null());
        assert_eq!(data.fields[1].label(), "q2", "a blank label falls back to the key");
    }
}

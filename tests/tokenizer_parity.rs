//! The tokenizer against HF `tokenizers` on 523 texts (tests/tools/make_tokenizer_cases.py):
//! fuzzed Unicode, control characters, special tokens, over-long words, truncation.

use crate::common::{data_path, embedder};

#[test]
fn ids_match_hf_tokenizers_on_every_case() {
    let raw = std::fs::read_to_string(data_path("tokenizer_cases.jsonl")).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for line in raw.lines() {
        let case: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = case["text"].as_str().unwrap();
        let want: Vec<u32> = case["ids"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        let enc = embedder().tokenize(text);
        if enc.ids != want || enc.untruncated_len != case["untruncated_len"].as_u64().unwrap() as usize {
            failures.push(format!("{text:?}\n  want {want:?}\n  got  {:?} (untruncated {})", enc.ids, enc.untruncated_len));
        }
        checked += 1;
    }
    assert!(checked > 500);
    assert!(failures.is_empty(), "{} of {checked} differ:\n{}", failures.len(), failures[..failures.len().min(5)].join("\n"));
}

//! Integration tests, one binary: each module is one concern seen from the outside.

mod common;

mod cli;
mod parity;
mod snapshot_errors;
mod tokenizer_parity;

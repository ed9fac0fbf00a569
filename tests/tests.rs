//! Integration tests, one binary: each module is one concern seen from the outside.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

mod cache;
mod chunk;
mod cli;
mod fuzz_regressions;
mod contract;
mod http;
mod lambda;
mod ops;
mod parity;
mod pdf;
mod score;
mod score_eval;
mod postgres;
mod search;
mod server;
mod snapshot_errors;
mod tally;
mod tokenizer_parity;

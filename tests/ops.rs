//! Operations tools seen from outside: `snapembed memory`, `snapembed check` against a real
//! server, oversized bodies over a real socket, and `X-Request-Id`.

use std::process::Command;

fn snapembed() -> Command {
    Command::new(env!("CARGO_BIN_EXE_snapembed"))
}

#[test]
fn memory_once_prints_the_memory_status_report() {
    let out = snapembed().args(["memory", "--once", "--memory-limit-mb", "100000"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("level:      normal"), "{text}");
    assert!(text.contains("of 100000.0 MB") && text.contains("budget from --memory-limit-mb"), "{text}");
    assert!(text.contains("standard 70%, aggressive 80%, emergency 90%"), "{text}");

    // A 1 MB budget: this process is over every threshold.
    let out = snapembed().args(["memory", "--json", "--memory-limit-mb", "1"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["level"], "emergency");
    assert_eq!(v["limit_bytes"], 1 << 20);
    assert!(v["process_rss_bytes"].as_u64().unwrap() > 1 << 20);
    assert_eq!(v["last_cleanups"][0]["to"], "emergency");
}

#[test]
fn memory_watch_keeps_printing() {
    use std::io::{BufRead, BufReader};
    let mut child = snapembed()
        .args(["memory", "--watch", "--json", "--interval", "1"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let a: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    let b: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!((a["checks"].as_u64(), b["checks"].as_u64()), (Some(1), Some(2)), "a second report, a second check");
}

#[test]
fn thresholds_out_of_order_are_refused() {
    let out = snapembed().args(["memory", "--memory-standard", "0.9", "--memory-aggressive", "0.8"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must rise strictly"));
    let out = snapembed().args(["serve", "--port", "0"]).env("SNAPEMBED_MEMORY_EMERGENCY", "1.5").output().unwrap();
    assert!(!out.status.success(), "a server must not start with thresholds it cannot meet");
    assert!(String::from_utf8_lossy(&out.stderr).contains("must rise strictly"));
}

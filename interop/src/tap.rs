//! TAP version 14 output, as the moq-interop-runner test-client interface
//! specifies it: version line, comment header, plan, one test point per
//! test, and a YAML diagnostic block indented two spaces.

use crate::cases::{Diag, Failure};
use std::fmt::Write as _;
use std::time::Duration;

/// A YAML scalar: bare when it is plainly safe, double-quoted otherwise.
fn scalar(v: &str) -> String {
    let plain = !v.is_empty()
        && v.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !matches!(v, "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~")
        && !v.starts_with(['-', '.']);
    if plain {
        return v.to_string();
    }
    let mut s = String::with_capacity(v.len() + 2);
    s.push('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(s, "\\x{:02x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

/// The version line and the run-level comments before the plan.
pub fn header(comments: &[String], plan: usize) -> String {
    let mut out = String::from("TAP version 14\n");
    for c in comments {
        let _ = writeln!(out, "# {c}");
    }
    let _ = writeln!(out, "1..{plan}");
    out
}

/// One test point and its YAML block.
pub fn point(n: usize, name: &str, result: &Result<(), Failure>, elapsed: Duration, diag: &Diag, verbose: bool) -> String {
    let mut out = String::new();
    if verbose {
        for step in &diag.steps {
            let _ = writeln!(out, "# {name}: {step}");
        }
    }
    let status = if result.is_ok() { "ok" } else { "not ok" };
    let _ = writeln!(out, "{status} {n} - {name}");
    out.push_str("  ---\n");
    let _ = writeln!(out, "  duration_ms: {}", elapsed.as_millis());
    for (k, v) in &diag.connections {
        let _ = writeln!(out, "  {k}: {}", scalar(v));
    }
    if let Err(f) = result {
        if let Some(e) = &f.expected {
            let _ = writeln!(out, "  expected: {}", scalar(e));
        }
        if let Some(r) = &f.received {
            let _ = writeln!(out, "  received: {}", scalar(r));
        }
        let _ = writeln!(out, "  message: {}", scalar(&f.message));
    }
    for (k, v) in &diag.fields {
        let _ = writeln!(out, "  {k}: {}", scalar(v));
    }
    out.push_str("  ...\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_scalars() {
        assert_eq!(scalar("84ee7793841adcad"), "84ee7793841adcad");
        assert_eq!(scalar("SUBSCRIBE_ERROR"), "SUBSCRIBE_ERROR");
        assert_eq!(scalar("timeout"), "timeout");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("say \"hi\"\n"), "\"say \\\"hi\\\"\\n\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar(""), "\"\"");
    }

    #[test]
    fn failing_point_has_expected_and_received() {
        let diag = Diag { connections: vec![("connection_id".into(), "abc123".into())], ..Default::default() };
        let f = Failure::new("SUBSCRIBE_ERROR", "timeout", "no response after 2000 ms");
        let s = point(3, "subscribe-error", &Err(f), Duration::from_millis(2001), &diag, false);
        assert_eq!(
            s,
            "not ok 3 - subscribe-error\n  ---\n  duration_ms: 2001\n  connection_id: abc123\n  expected: SUBSCRIBE_ERROR\n  \
             received: timeout\n  message: \"no response after 2000 ms\"\n  ...\n"
        );
    }
}

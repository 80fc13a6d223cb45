//! Conformance and data flow against a foreign implementation: aiomoqt 0.13.3
//! (PyPI) as client, publisher and subscriber, our relay in the middle — at
//! draft-18 and at draft-22 (docs/DRAFT22.md), over raw QUIC and WebTransport.

mod common;
use common::{aiomoqt_bin, Relay};
use std::process::Command;

/// Runs aiomoqt's conformance client and returns (passed, failed) test points.
fn tap(url: &str, draft: &str, test: Option<&str>) -> (Vec<String>, Vec<String>, String) {
    let mut cmd = Command::new(aiomoqt_bin().join("moq-interop-client"));
    cmd.args(["-r", url, "--tls-disable-verify", "--draft", draft]);
    if let Some(t) = test {
        cmd.args(["-t", t]);
    }
    let out = cmd.output().expect("run moq-interop-client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ok = text.lines().filter_map(|l| l.strip_prefix("ok ")).map(|l| l.to_string()).collect();
    let not_ok = text.lines().filter_map(|l| l.strip_prefix("not ok ")).map(|l| l.to_string()).collect();
    (ok, not_ok, text)
}

/// The 12 standard cases, then `fetch` and `join` (at draft-22 a join is a
/// SUBSCRIBE with FILL_PARAMETERS, answered with a backfill stream).
fn full_suite(url: &str, draft: &str) {
    let (ok, not_ok, text) = tap(url, draft, None);
    assert!(not_ok.is_empty() && ok.len() == 12, "{url} draft-{draft}: {} ok, failures {not_ok:?}\n{text}", ok.len());
    for t in ["fetch", "join"] {
        let (ok, not_ok, text) = tap(url, draft, Some(t));
        assert!(not_ok.is_empty() && ok.len() == 1, "{url} draft-{draft} {t}: {not_ok:?}\n{text}");
    }
}

#[test]
fn aiomoqt_conformance_raw_quic() {
    let relay = Relay::start(&[]);
    full_suite(&relay.quic_url(), "18");
}

#[test]
fn aiomoqt_conformance_webtransport() {
    let relay = Relay::start(&[]);
    full_suite(&relay.wt_url(), "18");
}

#[test]
fn aiomoqt_conformance_draft22_raw_quic() {
    let relay = Relay::start(&[]);
    full_suite(&relay.quic_url(), "22");
}

#[test]
fn aiomoqt_conformance_draft22_webtransport() {
    let relay = Relay::start(&[]);
    full_suite(&relay.wt_url(), "22");
}

fn dataflow(flow: &str) {
    let relay = Relay::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../interop/aiomoqt/dataflow.py");
    // Publisher and subscriber of the same draft, then of different ones:
    // the relay carries the track between a draft-22 and a draft-18 session.
    for (publisher, subscriber) in [("18", "18"), ("22", "22"), ("22", "18"), ("18", "22")] {
        for url in [relay.quic_url(), relay.wt_url()] {
            let out = Command::new(aiomoqt_bin().join("python")).args([script, &url, flow, "300", publisher, subscriber]).output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout);
            let drafts = format!("draft-{publisher} publisher, draft-{subscriber} subscriber");
            assert!(out.status.success(), "{flow} over {url}, {drafts}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
            assert!(stdout.contains("\"ok\": true"), "{stdout}");
        }
    }
}

/// aiomoqt publisher (PUBLISH_NAMESPACE) → relay → aiomoqt subscriber.
#[test]
fn aiomoqt_dataflow_publish_namespace() {
    dataflow("namespace");
}

/// aiomoqt publisher (direct PUBLISH) → relay → aiomoqt subscriber.
#[test]
fn aiomoqt_dataflow_direct_publish() {
    dataflow("publish");
}

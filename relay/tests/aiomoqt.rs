//! Conformance and data flow against a foreign implementation: aiomoqt 0.13.3
//! (PyPI) as client, publisher and subscriber, our relay in the middle.

mod common;
use common::{aiomoqt_bin, Relay};
use std::process::Command;

/// Runs aiomoqt's conformance client and returns (passed, failed) test points.
fn tap(url: &str, test: Option<&str>) -> (Vec<String>, Vec<String>, String) {
    let mut cmd = Command::new(aiomoqt_bin().join("moq-interop-client"));
    cmd.args(["-r", url, "--tls-disable-verify", "--draft", "18"]);
    if let Some(t) = test {
        cmd.args(["-t", t]);
    }
    let out = cmd.output().expect("run moq-interop-client");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let ok = text.lines().filter_map(|l| l.strip_prefix("ok ")).map(|l| l.to_string()).collect();
    let not_ok = text.lines().filter_map(|l| l.strip_prefix("not ok ")).map(|l| l.to_string()).collect();
    (ok, not_ok, text)
}

fn full_suite(url: &str) {
    let (ok, not_ok, text) = tap(url, None);
    assert!(not_ok.is_empty() && ok.len() == 12, "{url}: {} ok, failures {not_ok:?}\n{text}", ok.len());
    for t in ["fetch", "join"] {
        let (ok, not_ok, text) = tap(url, Some(t));
        assert!(not_ok.is_empty() && ok.len() == 1, "{url} {t}: {not_ok:?}\n{text}");
    }
}

#[test]
fn aiomoqt_conformance_raw_quic() {
    let relay = Relay::start(&[]);
    full_suite(&relay.quic_url());
}

#[test]
fn aiomoqt_conformance_webtransport() {
    let relay = Relay::start(&[]);
    full_suite(&relay.wt_url());
}

fn dataflow(flow: &str) {
    let relay = Relay::start(&[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../interop/aiomoqt/dataflow.py");
    for url in [relay.quic_url(), relay.wt_url()] {
        let out = Command::new(aiomoqt_bin().join("python")).args([script, &url, flow, "300"]).output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{flow} over {url}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("\"ok\": true"), "{stdout}");
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

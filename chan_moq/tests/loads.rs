//! chan_moq.so loads into a real Asterisk 22, unloads and loads again.
//!
//! Drives `chan_moq/harness/asterisk.sh` (root only: chroot + namespaces):
//! build (cached chroot) -> conf -> install-module -> start -> module show ->
//! module unload -> module load -> stop (which fails unless Asterisk exits 0).
//!
//! Run: `cargo test -p chan_moq --test loads` as root. The first run builds the
//! Debian sid chroot (~1.5 min, needs the Debian mirror); later runs reuse it.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Own instance (files in $ROOT/opt/<name>, network namespace <name>), so other
/// harness users (other tests, a developer's shell) don't collide with this one.
const INSTANCE: &str = "chan-moq-loads";

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("harness/asterisk.sh")
}

/// `libchan_moq.so` of this build. The test binary lives in `<target>/<profile>/deps/`.
/// `cargo test` builds the lib (all its crate types) into that same `deps/` dir but
/// copies it up to `<target>/<profile>/` only on `cargo build`, so the copy up there
/// can be stale: take the one beside the test binary, else the one above it.
/// MOQ_CHAN_MOQ_SO overrides.
fn module_path() -> PathBuf {
    if let Some(p) = std::env::var_os("MOQ_CHAN_MOQ_SO") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let deps = exe.parent().expect("test binary in <target>/<profile>/deps");
    let beside = deps.join("libchan_moq.so");
    if beside.is_file() {
        return beside;
    }
    deps.parent().map(|p| p.join("libchan_moq.so")).unwrap_or(beside)
}

fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1)) == Some("0")
}

fn run(args: &[&str]) -> Output {
    let out = Command::new("bash")
        .arg(harness())
        .args(args)
        .env("MOQ_ASTERISK_INSTANCE", INSTANCE)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running asterisk.sh {args:?}: {e}"));
    eprintln!("$ asterisk.sh {}\n{}{}", args.join(" "), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(out.status.success(), "asterisk.sh {args:?} failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cli(cmd: &str) -> String {
    ok(&["cli", cmd])
}

fn module_running() -> bool {
    cli("module show like chan_moq").lines().any(|l| l.starts_with("chan_moq.so") && l.contains("Running"))
}

/// Stops this test's Asterisk even when an assertion fails.
struct Running;
impl Drop for Running {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = run(&["stop"]);
        }
    }
}

/// Polls `cond` until it holds or `timeout` passes.
fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn info(key: &str) -> PathBuf {
    let out = ok(&["info"]);
    let v = out.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("{key} in asterisk.sh info"));
    PathBuf::from(v)
}

#[test]
fn chan_moq_loads_unloads_and_reloads_in_asterisk() {
    assert!(
        is_root(),
        "this test runs a real Asterisk in a chroot and network namespaces, which needs root: \
         run it as root, e.g. `sudo -E cargo test -p chan_moq --test loads`"
    );
    let so = module_path();
    assert!(so.is_file(), "{} not found: build it with `cargo build -p chan_moq` (or set MOQ_CHAN_MOQ_SO)", so.display());

    ok(&["build"]);
    // Leftovers of an interrupted earlier run of this test.
    let _ = run(&["stop"]);
    ok(&["conf"]);
    ok(&["install-module", so.to_str().unwrap()]);
    let guard = Running;
    let started = ok(&["start"]);
    assert!(started.lines().any(|l| l.starts_with("pid=")), "start prints pid=: {started}");

    assert!(module_running(), "chan_moq.so is not Running after boot");
    let messages = info("MESSAGES_LOG");
    let loaded_count = || std::fs::read_to_string(&messages).unwrap_or_default().matches("chan_moq loaded").count();
    wait_for("'chan_moq loaded' in messages.log", Duration::from_secs(10), || loaded_count() >= 1);

    let out = cli("module unload chan_moq.so");
    assert!(out.contains("Unloaded chan_moq.so"), "unload: {out}");
    assert!(!module_running(), "chan_moq.so still listed after unload");

    let out = cli("module load chan_moq.so");
    assert!(out.contains("Loaded chan_moq.so"), "load: {out}");
    assert!(module_running(), "chan_moq.so is not Running after reload");
    wait_for("a second 'chan_moq loaded'", Duration::from_secs(10), || loaded_count() >= 2);

    // Fails unless Asterisk exits 0 (a crash at shutdown would show as 139).
    ok(&["stop"]);
    drop(guard);
}

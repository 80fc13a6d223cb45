//! chan_moq.so loads into a real Asterisk 22, unloads and loads again.
//!
//! Drives `chan_moq/harness/asterisk.sh` (root only: chroot + namespaces):
//! build (cached chroot) -> conf -> install-module -> start -> module show ->
//! module unload -> module load -> stop (which fails unless Asterisk exits 0).
//!
//! Run: `cargo test -p chan_moq --test loads` as root (`MOQ_TEST_ASTERISK=0`
//! skips it). The first run builds the Debian sid chroot (~1.5 min, needs the
//! Debian mirror); later runs reuse it.

mod common;

use common::{wait_for, Asterisk};
use std::time::Duration;

/// Own instance (files in $ROOT/opt/<name>, network namespace <name>), so other
/// harness users (other tests, a developer's shell) don't collide with this one.
const INSTANCE: &str = "chan-moq-loads";

/// Listed as "Running". After an unload the entry may stay, "Not Running":
/// glibc keeps a library mapped while threads that used its thread-locals
/// (tokio's, on Asterisk's CLI thread) live, so `dlclose` does not unmap it
/// and its destructor never unregisters it. That is safe (no code vanishes
/// under a thread), and `module load` starts it again.
fn module_running(a: &Asterisk) -> bool {
    a.cli("module show like chan_moq").lines().any(|l| l.starts_with("chan_moq.so") && l.contains(" Running") && !l.contains("Not Running"))
}

/// Stops this test's Asterisk even when an assertion fails.
struct Running<'a>(&'a Asterisk);
impl Drop for Running<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = self.0.run(&["stop"]);
        }
    }
}

#[test]
fn chan_moq_loads_unloads_and_reloads_in_asterisk() {
    if !common::asterisk_tests("loads") {
        return;
    }
    let a = Asterisk::new(INSTANCE);
    let so = common::module_path();
    assert!(so.is_file(), "{} not found: build it with `cargo build -p chan_moq` (or set MOQ_CHAN_MOQ_SO)", so.display());

    a.build();
    // Leftovers of an interrupted earlier run of this test.
    let _ = a.run(&["stop"]);
    a.ok(&["conf"]);
    a.ok(&["install-module", so.to_str().unwrap()]);
    let guard = Running(&a);
    let started = a.ok(&["start"]);
    assert!(started.lines().any(|l| l.starts_with("pid=")), "start prints pid=: {started}");

    assert!(module_running(&a), "chan_moq.so is not Running after boot");
    let messages = a.info("MESSAGES_LOG");
    let loaded_count = || std::fs::read_to_string(&messages).unwrap_or_default().matches("chan_moq loaded").count();
    wait_for("'chan_moq loaded' in messages.log", Duration::from_secs(10), || loaded_count() >= 1);
    let out = a.cli("moq show status");
    assert!(out.contains("Relay:"), "moq show status after boot: {out}");

    let out = a.cli("module unload chan_moq.so");
    assert!(out.contains("Unloaded chan_moq.so"), "unload: {out}");
    assert!(!module_running(&a), "chan_moq.so still listed after unload");
    let out = a.cli("moq show status");
    assert!(!out.contains("Relay:"), "moq show status still registered after unload: {out}");

    let out = a.cli("module load chan_moq.so");
    assert!(out.contains("Loaded chan_moq.so"), "load: {out}");
    assert!(module_running(&a), "chan_moq.so is not Running after reload");
    wait_for("a second 'chan_moq loaded'", Duration::from_secs(10), || loaded_count() >= 2);
    // The CLI entries (kept for the library's lifetime) are registered again.
    let out = a.cli("moq show status");
    assert!(out.contains("Relay:"), "moq show status after reload: {out}");

    // Fails unless Asterisk exits 0 (a crash at shutdown would show as 139).
    a.ok(&["stop"]);
    drop(guard);
}

//! Test fixture: a real Asterisk 22 (chan_moq/harness/asterisk.sh) in its
//! own network namespace, with our moq-relay and headless moq-phones
//! started inside that namespace. Root only (chroot + namespaces); without
//! root the tests fail, unless `MOQ_TEST_ASTERISK=0` skips them deliberately.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("harness/asterisk.sh")
}

/// `libchan_moq.so` of this build. `cargo test` refreshes the copy in
/// `deps/` (beside the test binary) but not the one above it, so prefer
/// the former. MOQ_CHAN_MOQ_SO overrides.
pub fn module_path() -> PathBuf {
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

/// A workspace binary (moq-relay, moq-phone) next to `deps/`.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let p = exe.parent().and_then(Path::parent).expect("target dir").join(name);
    assert!(p.is_file(), "{} not found: run `cargo build --workspace --bins` first", p.display());
    p
}

pub fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1)) == Some("0")
}

pub fn require_root(test: &str) {
    assert!(
        is_root(),
        "this test runs a real Asterisk in a chroot and network namespaces, which needs root: \
         run it as root, e.g. `sudo -E cargo nextest run -p chan_moq --test {test}`, or skip the Asterisk tests with MOQ_TEST_ASTERISK=0"
    );
}

/// Whether an Asterisk test runs: false (and it says so) when
/// `MOQ_TEST_ASTERISK=0` skips the Asterisk tests deliberately; otherwise it
/// needs root and fails without it.
pub fn asterisk_tests(test: &str) -> bool {
    if std::env::var("MOQ_TEST_ASTERISK").is_ok_and(|v| v == "0") {
        let name = std::thread::current().name().unwrap_or(test).to_string();
        eprintln!("MOQ_TEST_ASTERISK=0: skipping the Asterisk test {name}");
        return false;
    }
    require_root(test);
    true
}

/// Polls `cond` until it holds or `timeout` passes. Only for Asterisk's
/// state (CLI output, messages.log), which tells the tests of no event;
/// the phones' output and exits are events (see [`Pbx::wait_line`]).
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One Asterisk instance of the harness.
pub struct Asterisk {
    pub instance: String,
}

impl Asterisk {
    pub fn new(instance: &str) -> Asterisk {
        Asterisk { instance: instance.into() }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }

    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let out = Command::new("bash")
            .arg(harness())
            .args(args)
            .env("MOQ_ASTERISK_INSTANCE", &self.instance)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running asterisk.sh {args:?}: {e}"));
        eprintln!("$ asterisk.sh {}\n{}{}", args.join(" "), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        out
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_env(args, &[])
    }

    /// The harness's Debian sid chroot with Asterisk 22, built on first use
    /// (a download, minutes; cached in target/asterisk).
    pub fn build(&self) {
        let out = self.run(&["build"]);
        assert!(
            out.status.success(),
            "the Asterisk chroot could not be built ({}): `chan_moq/harness/asterisk.sh build` needs root and Debian's \
             package mirror (./scripts/test runs it), or skip the Asterisk tests with MOQ_TEST_ASTERISK=0",
            out.status
        );
    }

    pub fn ok_env(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.run_env(args, env);
        assert!(out.status.success(), "asterisk.sh {args:?} failed: {}", out.status);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn cli(&self, cmd: &str) -> String {
        self.ok(&["cli", cmd])
    }

    pub fn info(&self, key: &str) -> PathBuf {
        let out = self.ok(&["info"]);
        let v = out.lines().find_map(|l| l.strip_prefix(&format!("{key}="))).unwrap_or_else(|| panic!("{key} in asterisk.sh info"));
        PathBuf::from(v)
    }

    pub fn messages(&self) -> String {
        std::fs::read_to_string(self.info("MESSAGES_LOG")).unwrap_or_default()
    }

    /// A command run inside Asterisk's network namespace.
    pub fn netns(&self, program: &Path) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.instance]).arg(program);
        c
    }

    /// The chroot's root on the host.
    pub fn root(&self) -> PathBuf {
        self.info("ROOT")
    }
}

/// What a moq-phone printed so far and whether it has exited (its stdout
/// closed), with a condition variable that its reader thread signals on
/// every line and at the end: waiting on it is waiting for an event.
#[derive(Default)]
struct PhoneOut {
    state: Mutex<(Vec<String>, bool)>,
    changed: Condvar,
}

impl PhoneOut {
    /// Copies the phone's stdout into `log` line by line, then records each line.
    fn follow(self: Arc<Self>, stdout: impl std::io::Read + Send + 'static, log: &Path) {
        let mut file = std::fs::File::create(log).unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                self.state.lock().unwrap().0.push(line);
                self.changed.notify_all();
            }
            self.state.lock().unwrap().1 = true;
            self.changed.notify_all();
        });
    }

    /// Waits until `done(lines, exited)` holds, failing after `timeout`.
    fn wait(&self, what: &str, timeout: Duration, done: impl Fn(&[String], bool) -> bool) {
        let (state, result) = self.changed.wait_timeout_while(self.state.lock().unwrap(), timeout, |s| !done(&s.0, s.1)).unwrap();
        assert!(!result.timed_out(), "timed out after {timeout:?} waiting for {what}; it printed:\n{}", state.0.join("\n"));
    }
}

/// Asterisk + our relay + chan_moq registered, torn down on drop.
pub struct Pbx {
    pub ast: Asterisk,
    relay: Option<Child>,
    pub relay_url: String,
    children: Vec<Child>,
    /// Each phone's output, by its log path.
    outputs: HashMap<PathBuf, Arc<PhoneOut>>,
    dir: PathBuf,
    /// Extra arguments of the relay (e.g. `--auth-key`), kept across restarts.
    relay_args: Vec<String>,
    /// Environment of the phones (e.g. `MOQ_TOKEN`).
    pub phone_env: Vec<(String, String)>,
}

pub const MOQ_CONF: &str =
    "[general]\nrelay = moqt://127.0.0.1:4443\ninsecure = yes\ncontext = moq-test\ncodecs = slin48\nreconnect_ms = 100\n";

impl Pbx {
    /// Boots Asterisk with `dialplan` as the body of `[moq-test]` and waits
    /// until chan_moq is registered with the relay.
    pub fn start(instance: &str, dialplan: &str) -> Pbx {
        Self::start_with(instance, dialplan, MOQ_CONF)
    }

    /// As [`Pbx::start`], with this `moq.conf`.
    pub fn start_with(instance: &str, dialplan: &str, moq_conf: &str) -> Pbx {
        Self::start_full(instance, dialplan, moq_conf, &[])
    }

    /// As [`Pbx::start_with`], the relay started with `relay_args` too.
    pub fn start_full(instance: &str, dialplan: &str, moq_conf: &str, relay_args: &[&str]) -> Pbx {
        let ast = Asterisk::new(instance);
        let so = module_path();
        assert!(so.is_file(), "{} not found: build it with `cargo build -p chan_moq`", so.display());
        ast.build();
        let _ = ast.run(&["stop"]);
        let dir = std::env::temp_dir().join(format!("chan-moq-{instance}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("moq.conf"), moq_conf).unwrap();
        ast.ok_env(&["conf", dir.to_str().unwrap()], &[("MOQ_DIALPLAN", dialplan)]);
        ast.ok(&["install-module", so.to_str().unwrap()]);
        ast.ok(&["start"]);
        let mut pbx = Pbx {
            ast,
            relay: None,
            relay_url: "moqt://127.0.0.1:4443".into(),
            children: Vec::new(),
            outputs: HashMap::new(),
            dir,
            relay_args: relay_args.iter().map(|a| a.to_string()).collect(),
            phone_env: Vec::new(),
        };
        pbx.start_relay();
        pbx.wait_registered();
        pbx
    }

    pub fn start_relay(&mut self) {
        let log = std::fs::File::create(self.dir.join("relay.log")).unwrap();
        let child = self
            .ast
            .netns(&bin("moq-relay"))
            .args(["--bind", "127.0.0.1:4443"])
            .args(&self.relay_args)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.relay = Some(child);
    }

    pub fn kill_relay(&mut self) {
        if let Some(mut r) = self.relay.take() {
            let _ = r.kill();
            let _ = r.wait();
        }
    }

    pub fn registered(&self) -> bool {
        self.ast.cli("moq show status").contains("Registered:   yes")
    }

    pub fn wait_registered(&self) {
        wait_for("chan_moq registered with the relay", Duration::from_secs(20), || self.registered());
    }

    /// A moq-phone in the namespace; stdout goes to `<dir>/<name>.log`
    /// (the returned path, which names the phone to [`Pbx::wait_line`]).
    pub fn phone(&mut self, name: &str, args: &[&str]) -> PathBuf {
        let log = self.dir.join(format!("{name}.log"));
        let mut child = self
            .ast
            .netns(&bin("moq-phone"))
            .args(["-r", &self.relay_url, "-k"])
            .args(args)
            .envs(self.phone_env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(self.dir.join(format!("{name}.err"))).unwrap())
            .spawn()
            .unwrap();
        let out = Arc::new(PhoneOut::default());
        out.clone().follow(child.stdout.take().unwrap(), &log);
        self.outputs.insert(log.clone(), out);
        self.children.push(child);
        log
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Waits for a line containing `needle` in the output of the phone
    /// whose log is `log`; fails at once if the phone exits without it.
    pub fn wait_line(&self, log: &Path, needle: &str, timeout: Duration) {
        let out = self.outputs.get(log).unwrap_or_else(|| panic!("{} is no phone's log", log.display()));
        let what = format!("'{needle}' from the phone of {}", log.display());
        out.wait(&what, timeout, |lines, exited| exited || lines.iter().any(|l| l.contains(needle)));
        let lines = &out.state.lock().unwrap().0;
        assert!(lines.iter().any(|l| l.contains(needle)), "the phone exited without printing {what}:\n{}", lines.join("\n"));
    }

    /// Waits for `needle` in Asterisk's messages.log and returns that line.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> String {
        let mut found = String::new();
        wait_for(&format!("'{needle}' in messages.log"), timeout, || {
            found = self.ast.messages().lines().find(|l| l.contains(needle)).unwrap_or_default().to_string();
            !found.is_empty()
        });
        found
    }

    /// Waits for every phone process to exit (its stdout closing), then reaps it.
    pub fn wait_phones(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        for (log, out) in &self.outputs {
            let left = deadline.saturating_duration_since(Instant::now());
            out.wait(&format!("the phone of {} to exit", log.display()), left, |_, exited| exited);
        }
        for c in &mut self.children {
            c.wait().unwrap();
        }
    }

    /// Asterisk has no channels left.
    pub fn no_channels(&self) -> bool {
        self.ast.cli("core show channels count").contains("0 active channels")
    }

    pub fn alive(&self) -> bool {
        self.ast.run(&["status"]).status.success()
    }
}

impl Drop for Pbx {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.kill_relay();
        let _ = self.ast.run(&["stop"]);
        // The logs stay for a failing test to be read; a passing one leaves nothing behind.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

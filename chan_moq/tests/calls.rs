//! chan_moq against a real Asterisk 22 (Debian sid chroot), our relay and
//! headless moq-phones, all inside one private network namespace per test
//! (issue 4's acceptance tests). Root only (`MOQ_TEST_ASTERISK=0` skips
//! them); see tests/common.

mod common;

use common::{wait_for, Pbx};
use pub_sub_audio::audio::wav;
use std::path::Path;
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// Writes an 8 kHz mono WAV tone (Asterisk's format_wav) into the chroot
/// at `/opt/<instance>/<name>.wav` and returns the Playback argument.
fn tone_in_chroot(pbx: &Pbx, name: &str, freq: f32, secs: f32) -> String {
    let path = pbx.ast.root().join("opt").join(&pbx.ast.instance).join(format!("{name}.wav"));
    write_tone(&path, 8000, freq, secs);
    format!("/opt/{}/{name}", pbx.ast.instance)
}

fn write_tone(path: &Path, rate: u32, freq: f32, secs: f32) {
    let spec = hound::WavSpec { channels: 1, sample_rate: rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for i in 0..(rate as f32 * secs) as usize {
        let v = (2.0 * std::f32::consts::PI * freq * i as f32 / rate as f32).sin() * 8000.0;
        w.write_sample(v as i16).unwrap();
    }
    w.finalize().unwrap();
}

/// Dominant frequency of each whole second of a 48 kHz recording that is
/// not silent.
fn tones(path: &Path) -> Vec<f32> {
    let s = wav::read(path).unwrap();
    s.chunks(48_000)
        .filter(|c| c.len() == 48_000 && c.iter().map(|v| v.unsigned_abs() as u32).max().unwrap_or(0) > 500)
        .map(|c| wav::dominant_frequency(c, 48_000))
        .collect()
}

fn count(hay: &str, needle: &str) -> usize {
    hay.lines().filter(|l| l.contains(needle)).count()
}

const DIALPLAN: &str = "exten => dial-alice,1,Dial(MOQ/alice,4,g)
 same => n,Log(NOTICE,RESULT ${DIALSTATUS} ${HANGUPCAUSE})
exten => 100,1,Log(NOTICE,CALLER ${CALLERID(num)} ${MOQ_REMOTE})
 same => n,Answer()
 same => n,Playback(${TONE})
 same => n,Echo()
exten => 200,1,Answer()
 same => n,Read(D,,2,,,10)
 same => n,Log(NOTICE,DIGITS ${D})
 same => n,SendDTMF(731)
 same => n,Wait(20)
 same => n,Hangup()";

/// The PBX of one test, or `None` when `MOQ_TEST_ASTERISK=0` skips it.
fn pbx(instance: &str) -> Option<(Pbx, String)> {
    pbx_with(instance, common::MOQ_CONF)
}

fn pbx_with(instance: &str, moq_conf: &str) -> Option<(Pbx, String)> {
    pbx_full(instance, moq_conf, &[])
}

fn pbx_full(instance: &str, moq_conf: &str, relay_args: &[&str]) -> Option<(Pbx, String)> {
    if !common::asterisk_tests("calls") {
        return None;
    }
    let tone_var = format!("/opt/{instance}/tone440");
    let plan = DIALPLAN.replace("${TONE}", &tone_var);
    let pbx = Pbx::start_full(instance, &plan, moq_conf, relay_args);
    let arg = tone_in_chroot(&pbx, "tone440", 440.0, 3.0);
    assert_eq!(arg, tone_var);
    Some((pbx, arg))
}

/// `Dial(MOQ/alice)`: the phone answers and records Asterisk's Playback;
/// then `channel originate MOQ/alice application Playback` does the same.
#[test]
fn dial_and_originate_reach_a_moq_phone_with_playback() {
    let Some((mut pbx, tone)) = pbx("cm-dial") else { return };
    for (i, how) in [format!("Local/dial-alice@moq-test application Playback {tone}"), format!("MOQ/alice application Playback {tone}")]
        .iter()
        .enumerate()
    {
        let rec = pbx.file(&format!("alice{i}.wav"));
        let log = pbx.phone(&format!("alice{i}"), &["--as", "alice", "answer", "--record", rec.to_str().unwrap(), "--hangup-after", "4"]);
        pbx.wait_line(&log, "registered", T);
        pbx.ast.cli(&format!("channel originate {how}"));
        pbx.wait_line(&log, "ended: hangup", T);
        pbx.wait_phones(T);
        let heard = tones(&rec);
        assert!(heard.iter().filter(|f| **f == 440.0).count() >= 2, "{how}: alice heard {heard:?}, expected the 440 Hz Playback");
        wait_for("no channels left", T, || pbx.no_channels());
    }
}

/// A MoQ call to `pbx/100` enters the dialplan with caller id set, hears
/// Playback, then its own audio echoed.
#[test]
fn moq_call_to_extension_plays_then_echoes() {
    let Some((mut pbx, _)) = pbx("cm-inbound") else { return };
    call_extension_100(&mut pbx);
}

/// The same with `codecs = opus`: Opus packets pass through chan_moq
/// untouched and Asterisk's codec_opus_open_source transcodes.
#[test]
fn opus_passthrough_plays_then_echoes() {
    let Some((mut pbx, _)) = pbx_with("cm-opus", &common::MOQ_CONF.replace("codecs = slin48", "codecs = opus")) else { return };
    assert!(pbx.ast.cli("moq show status").contains("Codecs:       opus"));
    let formats = call_extension_100(&mut pbx);
    assert!(formats.contains("NativeFormats: (opus"), "{formats}");
}

/// A relay that checks tokens (issue 13): chan_moq registers with the
/// `token` of moq.conf, and bob, with his own token, calls pbx/100 through it.
#[test]
fn tokens_in_moq_conf_and_on_the_phone() {
    let dir = std::env::temp_dir().join(format!("cm-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key = dir.join("issuer.key.pem");
    let _ = std::fs::remove_file(&key);
    let relay_cli = |args: &[&str]| {
        let out = std::process::Command::new(common::bin("moq-relay")).args(args).output().unwrap();
        assert!(out.status.success(), "moq-relay {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    relay_cli(&["keygen", "--out", key.to_str().unwrap()]);
    let token = |user: &str| relay_cli(&["token", "--key", key.to_str().unwrap(), "--user", user, "--ttl", "1h"]);
    let conf = format!("{}token = {}\n", common::MOQ_CONF, token("pbx"));
    let public = dir.join("issuer.key.pub.pem");
    // Registered (pbx_full waits for it) only if the relay took moq.conf's token.
    let Some((mut pbx, _)) = pbx_full("cm-tokens", &conf, &["--auth-key", public.to_str().unwrap()]) else { return };
    pbx.phone_env.push(("MOQ_TOKEN".into(), token("bob")));
    call_extension_100(&mut pbx);
}

/// bob calls pbx/100; returns what `core show channel` said of the MOQ leg.
fn call_extension_100(pbx: &mut Pbx) -> String {
    let play = pbx.file("bob660.wav");
    write_tone(&play, 48_000, 660.0, 10.0);
    let rec = pbx.file("bob.wav");
    let log = pbx.phone(
        "bob",
        &["--as", "bob", "call", "pbx/100", "--play", play.to_str().unwrap(), "--record", rec.to_str().unwrap(), "--hangup-after", "7"],
    );
    pbx.wait_line(&log, "established", T);
    let name = pbx.ast.cli("core show channels concise").lines().find(|l| l.starts_with("MOQ/")).unwrap_or_default().to_string();
    let formats = pbx.ast.cli(&format!("core show channel {}", name.split('!').next().unwrap_or_default()));
    pbx.wait_line(&log, "ended: hangup", T);
    pbx.wait_phones(T);
    assert!(pbx.wait_log("CALLER bob", T).contains("CALLER bob bob"));
    let heard = tones(&rec);
    let p = heard.iter().position(|f| *f == 440.0).unwrap_or_else(|| panic!("no Playback tone in {heard:?}"));
    assert!(heard[p..].contains(&660.0), "bob's own 660 Hz never came back from Echo(): {heard:?}");
    wait_for("no channels left", T, || pbx.no_channels());
    formats
}

/// The NOTICE line of `Log(NOTICE,RESULT …)` (not pbx.c's "Executing" line).
const RESULT: &str = "Ext. dial-alice: RESULT ";

/// Busy, no answer and decline reach Dial as DIALSTATUS / HANGUPCAUSE.
#[test]
fn dial_outcomes_busy_noanswer_declined() {
    let Some((mut pbx, _)) = pbx("cm-outcomes") else { return };
    let cases: [(&[&str], &str); 3] = [
        (&["--busy"], "RESULT BUSY"),
        (&["--after-ms", "30000", "--wait-secs", "30"], "RESULT NOANSWER"),
        (&["--decline"], "RESULT CHANUNAVAIL 21"),
    ];
    for (i, (args, want)) in cases.iter().enumerate() {
        let mut a = vec!["--as", "alice", "answer"];
        a.extend_from_slice(args);
        let log = pbx.phone(&format!("alice{i}"), &a);
        pbx.wait_line(&log, "registered", T);
        pbx.ast.cli("channel originate Local/dial-alice@moq-test application Wait 1");
        wait_for(&format!("result {}", i + 1), T, || count(&pbx.ast.messages(), RESULT) > i);
        let line = pbx.ast.messages().lines().filter(|l| l.contains(RESULT)).nth(i).unwrap().to_string();
        assert!(line.contains(want), "case {args:?}: {line}");
        wait_for("no channels left", T, || pbx.no_channels());
        // The phone leaves (and unregisters) before the next case rings alice.
        pbx.wait_phones(T);
    }
}

/// DTMF both ways: the MoQ caller's digits reach Read(); SendDTMF's reach
/// the phone, then Asterisk hangs up (once the phone printed the last digit:
/// the dialplan's Wait(20) is only a bound).
#[test]
fn dtmf_both_ways() {
    let Some((mut pbx, _)) = pbx("cm-dtmf") else { return };
    let log = pbx.phone("bob", &["--as", "bob", "call", "pbx/200", "--dtmf", "42"]);
    assert!(pbx.wait_log("DIGITS", T).contains("DIGITS 42"));
    pbx.wait_line(&log, "dtmf 1", T);
    pbx.ast.cli("channel request hangup all");
    pbx.wait_line(&log, "ended: hangup by peer", T);
    let out = std::fs::read_to_string(&log).unwrap();
    let got: String = out.lines().filter_map(|l| l.strip_prefix("dtmf ")).collect();
    assert_eq!(got, "731", "{out}");
}

/// `module unload` during a call is refused; a relay restart mid-call ends
/// the call cleanly; chan_moq re-registers; Asterisk lives throughout and
/// ends with no channels; then unload works and Asterisk exits 0.
#[test]
fn unload_refused_and_relay_restart_mid_call() {
    let Some((mut pbx, _)) = pbx("cm-survive") else { return };
    let log = pbx.phone("alice", &["--as", "alice", "answer"]);
    pbx.wait_line(&log, "registered", T);
    pbx.ast.cli("channel originate MOQ/alice application Echo");
    pbx.wait_line(&log, "established", T);
    // `module reload` applies a new moq.conf without dropping the call.
    let conf = pbx.ast.info("ETC").join("moq.conf");
    std::fs::write(&conf, common::MOQ_CONF.replace("context = moq-test", "context = moq-reloaded")).unwrap();
    pbx.ast.cli("module reload chan_moq.so");
    wait_for("the new context in moq show status", T, || pbx.ast.cli("moq show status").contains("Context:      moq-reloaded"));
    assert!(pbx.ast.cli("moq show channels").contains("1 active MOQ channel"), "reload dropped the call");
    assert!(pbx.registered());
    let out = pbx.ast.cli("module unload chan_moq.so");
    assert!(!out.contains("Unloaded chan_moq.so"), "unload during a call must be refused: {out}");
    assert!(pbx.alive());
    assert!(pbx.ast.cli("moq show channels").contains("1 active MOQ channel"));
    pbx.kill_relay();
    wait_for("the call torn down after the relay died", T, || pbx.no_channels());
    assert!(pbx.alive());
    pbx.start_relay();
    pbx.wait_registered();
    let out = pbx.ast.cli("module unload chan_moq.so");
    assert!(out.contains("Unloaded chan_moq.so"), "{out}");
    assert!(pbx.no_channels());
    pbx.ast.ok(&["stop"]);
}

/// `core restart gracefully` with a live MoQ leg (issue 20): Asterisk takes
/// the restart but lets the live call run — the caller stays connected and
/// hangs up as planned — then restarts; chan_moq loads again, registers
/// with the relay by itself, and takes the next call.
#[test]
fn core_restart_gracefully_lets_the_live_call_finish() {
    let Some((mut pbx, _)) = pbx("cm-restart") else { return };
    let registrations = |pbx: &Pbx| count(&pbx.ast.messages(), "chan_moq: registered as");
    let before = registrations(&pbx);
    let log = pbx.phone("bob", &["--as", "bob", "call", "pbx/100", "--hangup-after", "6"]);
    pbx.wait_line(&log, "established", T);
    pbx.ast.cli("core restart gracefully");
    // The call is not dropped: bob hangs up himself after 6 s (not "by peer", not a lost peer).
    pbx.wait_line(&log, "ended: ", T);
    let out = std::fs::read_to_string(&log).unwrap();
    assert_eq!(out.lines().find(|l| l.starts_with("ended: ")), Some("ended: hangup"), "{out}\n{}", pbx.ast.messages());
    // With no call left Asterisk restarts, and chan_moq with it.
    wait_for("Asterisk restarted, and chan_moq registered again", Duration::from_secs(60), || {
        pbx.ast.messages().contains("Asterisk is now restarting") && registrations(&pbx) > before && pbx.registered()
    });
    assert!(pbx.alive());
    let again = pbx.phone("bob2", &["--as", "bob", "call", "pbx/100", "--hangup-after", "3"]);
    pbx.wait_line(&again, "established", T);
    pbx.wait_line(&again, "ended: hangup", T);
    wait_for("no channels left", T, || pbx.no_channels());
}

/// Several MoQ calls at once share the gateway's one MoQ session: each
/// caller hears its own echo (regression: track aliases collided).
#[test]
fn concurrent_calls_each_hear_their_own_echo() {
    let Some((mut pbx, _)) = pbx("cm-concurrent") else { return };
    let callers = [("bob", 660.0), ("carol", 550.0), ("dave", 770.0)];
    let mut logs = Vec::new();
    for (user, freq) in callers {
        let play = pbx.file(&format!("{user}.in.wav"));
        write_tone(&play, 48_000, freq, 10.0);
        let rec = pbx.file(&format!("{user}.wav"));
        let args =
            ["--as", user, "call", "pbx/100", "--play", play.to_str().unwrap(), "--record", rec.to_str().unwrap(), "--hangup-after", "7"];
        logs.push((pbx.phone(user, &args), rec, freq));
    }
    wait_for("three MOQ channels up", T, || pbx.ast.cli("moq show channels").contains("3 active MOQ channels"));
    for (log, _, _) in &logs {
        pbx.wait_line(log, "ended: hangup", T);
    }
    pbx.wait_phones(T);
    for (_, rec, freq) in &logs {
        let heard = tones(rec);
        assert!(heard.contains(&440.0) && heard.contains(freq), "{}: heard {heard:?}, expected 440 then {freq}", rec.display());
    }
    wait_for("no channels left", T, || pbx.no_channels());
}

/// Hostile callers through the relay (issue 20, `moq-bench hostile-caller`):
/// an INVITE flood from a session that then vanishes without a word, a call
/// whose events and audio start with junk, and a caller that vanishes in the
/// middle of a call. Each reaches the dialplan; Asterisk stays up, no
/// channel is left behind, and the next proper call plays and echoes.
#[test]
fn hostile_callers_leave_no_stuck_channel() {
    let Some((mut pbx, _)) = pbx("cm-hostile") else { return };
    // The NOTICE line of extension 100's Log() (not pbx.c's "Executing" line).
    const ENTERED: &str = "Ext. 100: CALLER mallory";
    let mut callers = 0;
    for (kind, calls) in [("flood", 20), ("garbage", 1), ("vanish", 1)] {
        let out = pbx
            .ast
            .netns(&common::bin("moq-bench"))
            .args(["hostile-caller", "--relay", "moqt://127.0.0.1:4443", "--to", "pbx/100", "--kind", kind, "--count", &calls.to_string()])
            .output()
            .unwrap();
        let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "hostile caller {kind}: {said}");
        callers += calls;
        // Every one of them entered the dialplan (extension 100 logs its caller).
        wait_for(&format!("{kind}: {callers} calls from mallory in the dialplan"), T, || count(&pbx.ast.messages(), ENTERED) >= callers);
        wait_for(&format!("no channel left after the {kind} caller"), Duration::from_secs(30), || pbx.no_channels());
        assert!(pbx.alive(), "Asterisk died after the {kind} caller");
    }
    assert_eq!(count(&pbx.ast.messages(), ENTERED), 22, "one dialplan entry per call");
    call_extension_100(&mut pbx);
}

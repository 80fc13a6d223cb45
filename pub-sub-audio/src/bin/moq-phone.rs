//! moq-phone: a headless phone over MoQ (docs/CALLS.md).
//!
//!   moq-phone --as alice register            (then type `call bob`, `hangup`, …)
//!   moq-phone --as bob register --auto-answer --play in.wav --record out.wav
//!   moq-phone --as alice call bob --play in.wav --record out.wav
//!   moq-phone --as bob answer --play in.wav --record out.wav
//!   moq-phone presence
//!
//! Progress goes to stdout, one line per event ("ringing", "established",
//! "ended: busy"); errors to stderr with what to do about them.
//!
//! `register` and `answer` stay registered: when the relay session ends
//! they say why ("relay session ended: …; reconnecting in 1.2 s"),
//! reconnect with jittered exponential backoff and say "registered again"
//! (docs/CALLS.md §3, "Re-registration"). A call running when the session
//! ends finishes with a reason ("ended: lost peer").

use clap::{Parser, Subcommand};
use pub_sub_audio::audio::wav;
use pub_sub_audio::call::{Address, EndReason, Timers, UserAction};
use pub_sub_audio::phone::driver::Outcome;
use pub_sub_audio::phone::media::MediaConfig;
use pub_sub_audio::phone::reconnect::BackoffPolicy;
use pub_sub_audio::phone::{Incoming, Phone, PhoneConfig, Progress, Registration, RegistrationEvent};
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Parser)]
#[command(name = "moq-phone", version, about = "A headless phone over Media over QUIC (draft-ietf-moq-transport-18)")]
struct Cli {
    /// Relay URL: https://host:port (WebTransport) or moqt://host:port (raw QUIC).
    #[arg(long, short, env = "MOQ_RELAY", default_value = "https://localhost:4443", global = true)]
    relay: url::Url,
    /// Trust this CA (PEM) for the relay's certificate.
    #[arg(long, env = "MOQ_CA", global = true)]
    ca: Option<PathBuf>,
    /// Do not verify the relay's certificate (development only).
    #[arg(long, short = 'k', global = true)]
    insecure: bool,
    /// Our user name.
    #[arg(long = "as", env = "MOQ_USER", default_value = "anonymous", global = true)]
    user: String,
    /// Access token from `moq-relay token` (base64url), for relays that check tokens.
    #[arg(long, env = "MOQ_TOKEN", global = true, hide_env_values = true)]
    token: Option<String>,
    /// This device's id (random if omitted).
    #[arg(long, global = true)]
    device: Option<String>,
    /// Seconds before an unanswered call gives up.
    #[arg(long, default_value_t = 60, global = true)]
    no_answer_secs: u64,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Stay online (registered, reconnecting when the relay goes away) and
    /// print incoming calls until interrupted or `quit`. Commands on stdin,
    /// one a line: `call ADDRESS`, `answer`, `decline`, `hangup`, `hold`,
    /// `unhold`, `dtmf DIGITS`, `quit`. One call at a time.
    Register {
        #[command(flatten)]
        media: MediaArgs,
        /// Answer every incoming call (after --after-ms).
        #[arg(long)]
        auto_answer: bool,
        /// Let it ring this long before answering automatically.
        #[arg(long, default_value_t = 0)]
        after_ms: u64,
    },
    /// Call a user or an extension (user/ext).
    Call {
        to: String,
        #[command(flatten)]
        media: MediaArgs,
    },
    /// Wait for the next incoming call and answer (or decline / be busy).
    Answer {
        #[command(flatten)]
        media: MediaArgs,
        /// Decline instead of answering.
        #[arg(long)]
        decline: bool,
        /// Behave as a device already in a call.
        #[arg(long)]
        busy: bool,
        /// Let it ring this long before answering.
        #[arg(long, default_value_t = 0)]
        after_ms: u64,
        /// Give up waiting for a call after this many seconds.
        #[arg(long, default_value_t = 120)]
        wait_secs: u64,
    },
    /// Print who is online, and changes, until interrupted.
    Presence,
    /// Raw MoQ: announce NAMESPACE (a/b/c) and publish each stdin line as one
    /// object (one group per line) on TRACK to whoever subscribes.
    Publish { namespace: String, track: String },
    /// Raw MoQ: subscribe to NAMESPACE TRACK and print each object's payload.
    Subscribe { namespace: String, track: String },
}

#[derive(clap::Args)]
struct MediaArgs {
    /// WAV file to send (any rate, mono or stereo).
    #[arg(long)]
    play: Option<PathBuf>,
    /// WAV file to write what we hear into (48 kHz mono); `register`
    /// rewrites it after each call.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Hang up after this many seconds in the call.
    #[arg(long)]
    hangup_after: Option<f64>,
    /// Send these DTMF digits (0-9 * # A-D), 200 ms apart, once in the call.
    #[arg(long)]
    dtmf: Option<String>,
    /// Seconds in the call before the first DTMF digit.
    #[arg(long, default_value_t = 1.0)]
    dtmf_after: f64,
}

fn media(m: &MediaArgs) -> anyhow::Result<MediaConfig> {
    let play = match &m.play {
        Some(p) => wav::read(p)?,
        None => Vec::new(),
    };
    Ok(MediaConfig { play, record: m.record.is_some(), ..Default::default() })
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        // A log that cannot be written (a full disk under stderr) is lost, not
        // fatal: tracing-subscriber would report it on stderr with eprintln!,
        // which panics when stderr fails, and a relay mid-call must not exit.
        .log_internal_errors(false)
        .init();
    match run(Cli::parse()).await {
        Ok(code) => code,
        Err(e) => {
            // Not eprintln!: it panics if stderr cannot be written.
            let _ = writeln!(std::io::stderr(), "moq-phone: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

/// Prints progress lines; also signals the first "ringing" (so `answer`
/// acts on a call that actually rings) and "established" (for --hangup-after).
fn printer() -> (mpsc::UnboundedSender<Progress>, tokio::sync::watch::Receiver<(bool, bool)>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Progress>();
    let (seen_tx, seen_rx) = tokio::sync::watch::channel((false, false));
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            println!("{line}");
            match line {
                Progress::Ringing { on: true } => seen_tx.send_modify(|s| s.0 = true),
                Progress::Established { .. } => seen_tx.send_modify(|s| s.1 = true),
                _ => {}
            }
        }
    });
    (tx, seen_rx)
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let tls = match (&cli.ca, cli.insecure) {
        (_, true) => moq_client::Tls::DisableVerify,
        (Some(p), false) => moq_client::Tls::Ca(p.clone()),
        (None, false) => moq_client::Tls::System,
    };
    let device = cli.device.clone().unwrap_or_else(|| pub_sub_audio::phone::new_sid()[..8].to_string());
    let timers = Timers { no_answer: cli.no_answer_secs * 1000, ..Timers::default() };
    let token = match &cli.token {
        Some(t) => Some(
            pub_sub_audio::phone::parse_token(t)
                .ok_or_else(|| anyhow::anyhow!("--token is not a token from `moq-relay token` (base64url expected)"))?,
        ),
        None => None,
    };
    let cfg = PhoneConfig { url: cli.relay.clone(), tls, user: cli.user.clone(), device, display: cli.user.clone(), timers, token };
    match &cli.cmd {
        Cmd::Presence => return presence(cfg).await,
        Cmd::Publish { namespace, track } => return raw_publish(cfg, namespace, track).await,
        Cmd::Subscribe { namespace, track } => return raw_subscribe(cfg, namespace, track).await,
        _ => {}
    }
    let stay = |cfg| Phone::stay_registered(cfg, BackoffPolicy::default());
    // The answering phone's registration lives until after the linger below:
    // dropping it closes the session, and with it our tracks, before the
    // peer has read our last events (it would see a lost peer, not a hangup).
    let mut registration = None;
    let outcome = match cli.cmd {
        Cmd::Register { media: m, auto_answer, after_ms } => {
            let reg = stay(cfg).await?;
            println!("registered {} on {}", cli.user, cli.relay);
            return softphone(reg, &cli.user, &cli.relay, &m, auto_answer.then_some(after_ms)).await;
        }
        Cmd::Call { to, media: m } => {
            let (phone, _incoming) = Phone::register(cfg).await?;
            let (report, seen) = printer();
            let _ = report.send(Progress::Info(format!("registered {} on {}", cli.user, cli.relay)));
            let to = Address::parse(&to)?;
            let (user_tx, user_rx) = mpsc::unbounded_channel();
            hangup_timer(&m, user_tx.clone(), seen.clone());
            dtmf_sender(&m, user_tx.clone(), seen.clone());
            let out = phone.call(&to, media(&m)?, user_rx, report.clone()).await;
            finish(&m, &out, &report)?;
            out
        }
        Cmd::Answer { media: m, decline, busy, after_ms, wait_secs } => {
            let mut reg = stay(cfg).await?;
            println!("registered {} on {}", cli.user, cli.relay);
            let deadline = tokio::time::Instant::now() + Duration::from_secs(wait_secs);
            // Waiting survives relay restarts: the registration comes back.
            let (phone, inc) = loop {
                let ev = tokio::time::timeout_at(deadline, reg.next())
                    .await
                    .map_err(|_| anyhow::anyhow!("no incoming call within {wait_secs} s"))?
                    .ok_or_else(|| anyhow::anyhow!("the registration stopped"))?;
                match ev {
                    RegistrationEvent::Incoming { phone, call } => break (phone, call),
                    RegistrationEvent::GaveUp { error } => anyhow::bail!("{}", gave_up(&error)),
                    other => say(&other, &cli.user, &cli.relay),
                }
            };
            println!("incoming call {} from {}", inc.sid, inc.from);
            phone.set_busy(busy);
            let (report, seen) = printer();
            let (user_tx, user_rx) = mpsc::unbounded_channel();
            let action = if decline { UserAction::Decline } else { UserAction::Answer };
            answer_on_ringing(after_ms, action, user_tx.clone(), seen.clone());
            hangup_timer(&m, user_tx.clone(), seen.clone());
            dtmf_sender(&m, user_tx.clone(), seen.clone());
            let out = phone.take(&inc, media(&m)?, user_rx, report.clone()).await;
            finish(&m, &out, &report)?;
            registration = Some(reg);
            out
        }
        Cmd::Presence | Cmd::Publish { .. } | Cmd::Subscribe { .. } => unreachable!("handled above"),
    };
    // Let our tracks linger so the peer reads our last events, then leave.
    tokio::time::sleep(pub_sub_audio::phone::tracks::LINGER + Duration::from_millis(200)).await;
    drop(registration);
    Ok(match outcome.reason {
        EndReason::Hangup { .. } => std::process::ExitCode::SUCCESS,
        _ => std::process::ExitCode::from(1),
    })
}

/// Saves the recording, then prints the call's audio statistics.
fn finish(m: &MediaArgs, out: &Outcome, report: &mpsc::UnboundedSender<Progress>) -> anyhow::Result<()> {
    // Saved before the statistics line, which tells a watcher the file is written;
    // a failed save still gets the statistics.
    let saved = save(m, out);
    let (st, tx) = (out.recording.stats, out.recording.sender);
    let _ = report.send(Progress::Info(format!(
        "audio: played {} fec {} red {} concealed {} underruns {} late {} skipped {} concealed_ms {} accel_ms {} expand_ms {} target_ms {} \
         reports {} sent_loss_perc {} sent_max_loss_perc {} sent_k {} sent_red {}",
        st.played, st.fec, st.redundant, st.concealed, st.underruns, st.late, st.skipped, st.concealed_ms, st.accel_ms, st.expand_ms, st.target_ms,
        tx.reports, tx.loss_perc, tx.max_loss_perc, tx.max_k, tx.redundant_sent
    )));
    saved
}

/// One line per registration event (not rings: the caller prints those).
fn say(ev: &RegistrationEvent, user: &str, relay: &url::Url) {
    match ev {
        RegistrationEvent::SessionEnded { reason, retry_in } => {
            println!("relay session ended: {reason}; reconnecting in {:.1} s", retry_in.as_secs_f64())
        }
        RegistrationEvent::RetryFailed { error, retry_in } => {
            println!("reconnecting failed: {error}; next try in {:.1} s", retry_in.as_secs_f64())
        }
        RegistrationEvent::Registered => println!("registered again {user} on {relay}"),
        RegistrationEvent::GaveUp { error } => println!("{}", gave_up(error)),
        RegistrationEvent::Incoming { call, .. } => println!("incoming call {} from {}", call.sid, call.from),
    }
}

/// What a registration that the relay stopped taking says (and why it stops).
fn gave_up(error: &str) -> String {
    format!("registration given up: {error} — the relay no longer takes this token; get a new one (`moq-relay token`) and start again")
}

/// Sends `action` (answer or decline) once the call rings, after `after_ms`.
fn answer_on_ringing(
    after_ms: u64,
    action: UserAction,
    tx: mpsc::UnboundedSender<UserAction>,
    mut seen: tokio::sync::watch::Receiver<(bool, bool)>,
) {
    tokio::spawn(async move {
        if seen.wait_for(|s| s.0).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            let _ = tx.send(action);
        }
    });
}

/// The call `register` is in: where the user's commands go, and the call.
struct Active {
    actions: mpsc::UnboundedSender<UserAction>,
    call: tokio::task::JoinHandle<Outcome>,
    report: mpsc::UnboundedSender<Progress>,
}

/// Starts a call (placed when `to` is given, else taken) with a printer
/// and the --hangup-after / --dtmf helpers of `m`.
fn start_call(phone: Phone, to: Option<Address>, inc: Option<Incoming>, m: &MediaArgs, auto: Option<u64>) -> anyhow::Result<Active> {
    let (report, seen) = printer();
    let (actions, user_rx) = mpsc::unbounded_channel();
    hangup_timer(m, actions.clone(), seen.clone());
    dtmf_sender(m, actions.clone(), seen.clone());
    if let Some(after_ms) = auto {
        answer_on_ringing(after_ms, UserAction::Answer, actions.clone(), seen);
    }
    let cfg = media(m)?;
    let r = report.clone();
    let call = tokio::spawn(async move {
        match (to, inc) {
            (Some(to), _) => phone.call(&to, cfg, user_rx, r).await,
            (None, Some(inc)) => phone.take(&inc, cfg, user_rx, r).await,
            (None, None) => unreachable!("a call is placed or taken"),
        }
    });
    Ok(Active { actions, call, report })
}

/// `register`: stays online through relay restarts, takes commands from
/// stdin and runs one call at a time; a ring during a call is answered
/// busy by the phone itself (CALLS.md §4).
async fn softphone(
    mut reg: Registration,
    user: &str,
    relay: &url::Url,
    m: &MediaArgs,
    auto: Option<u64>,
) -> anyhow::Result<std::process::ExitCode> {
    use tokio::io::AsyncBufReadExt;
    let mut stdin = Some(tokio::io::BufReader::new(tokio::io::stdin()).lines());
    let mut active: Option<Active> = None;
    loop {
        tokio::select! {
            ev = reg.next() => match ev {
                Some(RegistrationEvent::Incoming { phone, call }) => {
                    println!("incoming call {} from {}", call.sid, call.from);
                    if active.is_none() {
                        active = Some(start_call(phone, None, Some(call), m, auto)?);
                    } else {
                        // Our busy flag makes the phone reject it as busy.
                        let (report, _) = printer();
                        tokio::spawn(async move {
                            let (_keep, none) = mpsc::unbounded_channel();
                            phone.take(&call, MediaConfig::default(), none, report).await
                        });
                    }
                }
                Some(RegistrationEvent::GaveUp { error }) => anyhow::bail!("{}", gave_up(&error)),
                Some(other) => say(&other, user, relay),
                None => anyhow::bail!("the registration stopped"),
            },
            line = async { match stdin.as_mut() { Some(l) => l.next_line().await, None => std::future::pending().await } } => {
                let Ok(Some(line)) = line else {
                    // stdin closed: keep serving calls without commands.
                    stdin = None;
                    continue;
                };
                let mut words = line.split_whitespace();
                let action = match (words.next(), words.next()) {
                    (None, _) => continue,
                    (Some("quit"), _) => return Ok(std::process::ExitCode::SUCCESS),
                    (Some("call"), Some(to)) => {
                        match (&active, reg.phone(), Address::parse(to)) {
                            (Some(_), _, _) => println!("error: already in a call"),
                            (None, None, _) => println!("error: not registered now (reconnecting to the relay)"),
                            (None, _, Err(e)) => println!("error: {e}"),
                            (None, Some(phone), Ok(to)) => active = Some(start_call(phone, Some(to), None, m, None)?),
                        }
                        continue;
                    }
                    (Some("answer"), _) => vec![UserAction::Answer],
                    (Some("decline"), _) => vec![UserAction::Decline],
                    (Some("hangup"), _) => vec![UserAction::Hangup],
                    (Some("hold"), _) => vec![UserAction::Hold],
                    (Some("unhold"), _) => vec![UserAction::Unhold],
                    (Some("dtmf"), Some(d)) => d.chars().map(|digit| UserAction::Dtmf { digit }).collect(),
                    (Some(other), _) => {
                        println!("error: unknown command {other:?}: call ADDRESS, answer, decline, hangup, hold, unhold, dtmf DIGITS, quit");
                        continue;
                    }
                };
                match &active {
                    Some(a) => action.into_iter().for_each(|x| { let _ = a.actions.send(x); }),
                    None => println!("error: no call"),
                }
            },
            out = async { match active.as_mut() { Some(a) => (&mut a.call).await, None => std::future::pending().await } } => {
                let a = active.take().expect("a call was running");
                match out {
                    // A recording that cannot be written (a full disk) is reported; the phone stays registered.
                    Ok(out) => {
                        if let Err(e) = finish(m, &out, &a.report) {
                            // Through the call's printer, after its last lines.
                            let _ = a.report.send(Progress::Info(format!("error: {e:#}")));
                        }
                    }
                    Err(e) => println!("error: the call failed: {e}"),
                }
            },
        }
    }
}

/// --hangup-after counts from the moment the call is established.
/// Sends `--dtmf` digits once the call is established.
fn dtmf_sender(m: &MediaArgs, tx: mpsc::UnboundedSender<UserAction>, mut seen: tokio::sync::watch::Receiver<(bool, bool)>) {
    let Some(digits) = m.dtmf.clone() else { return };
    let after = Duration::from_secs_f64(m.dtmf_after);
    tokio::spawn(async move {
        if seen.wait_for(|s| s.1).await.is_ok() {
            tokio::time::sleep(after).await;
            for digit in digits.chars() {
                let _ = tx.send(UserAction::Dtmf { digit });
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    });
}

fn hangup_timer(m: &MediaArgs, tx: mpsc::UnboundedSender<UserAction>, mut seen: tokio::sync::watch::Receiver<(bool, bool)>) {
    if let Some(secs) = m.hangup_after {
        tokio::spawn(async move {
            if seen.wait_for(|s| s.1).await.is_ok() {
                tokio::time::sleep(Duration::from_secs_f64(secs)).await;
                let _ = tx.send(UserAction::Hangup);
            }
        });
    }
}

fn save(m: &MediaArgs, out: &pub_sub_audio::phone::driver::Outcome) -> anyhow::Result<()> {
    if let Some(p) = &m.record {
        wav::write(p, &out.recording.samples).map_err(|e| anyhow::anyhow!("recording not saved: {e}"))?;
    }
    Ok(())
}

async fn presence(cfg: PhoneConfig) -> anyhow::Result<std::process::ExitCode> {
    let session = connect(&cfg).await?;
    let fields = pub_sub_audio::call::Namespaces::presence();
    let prefix =
        moq_wire::coding::TrackNamespacePrefix { fields: fields.iter().map(|f| moq_wire::coding::TupleField::from_utf8(f)).collect() };
    let mut w = session.subscribe_namespace(&prefix).await.map_err(|e| anyhow::anyhow!("presence refused: {e}"))?;
    loop {
        match w.next(Duration::from_secs(3600)).await {
            Ok(moq_client::NamespaceEvent::Namespace(s)) => println!("online {}", s.to_utf8_path().trim_start_matches('/')),
            Ok(moq_client::NamespaceEvent::Done(s)) => println!("offline {}", s.to_utf8_path().trim_start_matches('/')),
            Err(moq_client::Error::Timeout(_)) => {}
            Err(e) => anyhow::bail!("presence ended: {e}"),
        }
    }
}

async fn connect(cfg: &PhoneConfig) -> anyhow::Result<moq_client::Session> {
    let opts = moq_client::Options { token: cfg.token.clone(), ..Default::default() };
    moq_client::Client::connect_with(&cfg.url, &cfg.tls, &opts)
        .await
        .map_err(|e| anyhow::anyhow!("cannot reach the relay at {}: {e}", cfg.url))
}

async fn raw_publish(cfg: PhoneConfig, namespace: &str, track: &str) -> anyhow::Result<std::process::ExitCode> {
    use tokio::io::AsyncBufReadExt;
    let session = connect(&cfg).await?;
    let ns = moq_wire::coding::TrackNamespace::from_utf8_path(namespace);
    let _announce = session.publish_namespace(&ns).await.map_err(|e| anyhow::anyhow!("the relay refused the namespace: {e}"))?;
    eprintln!("announced {namespace}; waiting for a subscriber to {track}");
    let publisher = loop {
        match session.accept_subscribe(Duration::from_secs(3600)).await {
            Ok(req) if req.track_name() == track => break req.accept(1).await.map_err(|e| anyhow::anyhow!("{e}"))?,
            Ok(req) => {
                let _ = req.reject(0x10, "no such track").await;
            }
            Err(moq_client::Error::Timeout(_)) => {}
            Err(e) => anyhow::bail!("session ended: {e}"),
        }
    };
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut group = 0;
    while let Some(line) = lines.next_line().await? {
        publisher.send_group(group, &[bytes::Bytes::from(line.into_bytes())]).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        group += 1;
    }
    let _ = publisher.done(0x2, "end of input").await;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn raw_subscribe(cfg: PhoneConfig, namespace: &str, track: &str) -> anyhow::Result<std::process::ExitCode> {
    let session = connect(&cfg).await?;
    let ns = moq_wire::coding::TrackNamespace::from_utf8_path(namespace);
    let params = moq_client::SubscribeParams::new().rendezvous(Duration::from_secs(30));
    let mut sub = session.subscribe(&ns, track, params).await.map_err(|e| anyhow::anyhow!("subscribe refused: {e}"))?;
    loop {
        match sub.next_object(Duration::from_secs(3600)).await {
            Ok(o) => println!("{}", String::from_utf8_lossy(&o.payload)),
            Err(moq_client::Error::Timeout(_)) => {}
            Err(_) => return Ok(std::process::ExitCode::SUCCESS),
        }
    }
}

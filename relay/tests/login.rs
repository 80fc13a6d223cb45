//! Sign-in and the relay's default access at a real relay process (issue 13):
//! `moq-relay user add` writes argon2id hashes, `POST /login` trades the
//! right password for a token that opens a session, wrong ones get 401 and,
//! repeated, 429; without any key the relay serves its own machine only.

mod common;
use common::tokens::{keygen, open, open_via, relay_cmd};
use common::Relay;
use std::io::Write;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};

fn add_user(users: &Path, name: &str, password: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_moq-relay"))
        .args(["user", "add", name, "--password-stdin", "--users", users.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user add {name}: {}", String::from_utf8_lossy(&out.stderr));
}

fn login(relay: &Relay, user: &str, password: &str) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "user": user, "password": password }).to_string();
    let (status, reply) = relay.http_post("/login", &body);
    (status, serde_json::from_str(&reply).unwrap_or_else(|e| panic!("/login answered {status} with non-JSON {reply:?}: {e}")))
}

#[tokio::test]
async fn signing_in_trades_the_right_password_for_a_working_token() {
    let dir = std::env::temp_dir().join(format!("moq-login-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (key, _) = keygen(&dir, "issuer");
    let users = dir.join("users.toml");
    add_user(&users, "alice", "correct horse battery");
    let text = std::fs::read_to_string(&users).unwrap();
    assert!(text.contains("[users.alice]") && text.contains("$argon2id$") && !text.contains("correct horse"), "{text}");
    assert!(relay_cmd(&["user", "list", "--users", users.to_str().unwrap()]).contains("alice"));

    let relay = Relay::start(&["--users", users.to_str().unwrap(), "--signing-key", &key]);
    let access = relay.http_get("/access");
    assert!(access.contains(r#""mode":"tokens""#) && access.contains(r#""login":true"#), "{access}");
    assert_eq!(open(&relay, None).await.err(), Some(0x2), "no token, no session");

    let (status, wrong) = login(&relay, "alice", "Correct horse battery");
    assert_eq!((status, wrong["error"].as_str()), (401, Some("wrong user name or password")));
    let (status, unknown) = login(&relay, "mallory", "correct horse battery");
    assert_eq!((status, unknown["error"].as_str()), (401, Some("wrong user name or password")), "same answer as a wrong password");
    let (status, bad) = relay.http_post("/login", "user=alice");
    assert_eq!(status, 400, "{bad}");

    let (status, ok) = login(&relay, "alice", "correct horse battery");
    assert_eq!(status, 200, "{ok}");
    assert_eq!(ok["user"], "alice");
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let expires = ok["expires"].as_u64().unwrap();
    assert!(expires > now && expires <= now + 12 * 3600 + 5, "12 h by default: {expires} vs {now}");
    let token = moq_auth::token::from_url(ok["token"].as_str().unwrap()).unwrap();
    assert!(open(&relay, Some(&token)).await.is_ok(), "the token /login handed out opens a session");

    // A user added while the relay runs signs in without a restart.
    add_user(&users, "bob", "hunter2hunter2");
    assert_eq!(login(&relay, "bob", "hunter2hunter2").0, 200);
    assert_eq!(relay.metric("moq_relay_logins_total{result=\"ok\"}"), Some(2.0));
    assert_eq!(relay.metric("moq_relay_logins_total{result=\"wrong_credentials\"}"), Some(2.0));

    // Guessing from one address runs into the throttle (10 attempts, then one per 6 s).
    let throttled = (0..20).map(|_| relay.http_post("/login", r#"{"user":"alice","password":"guess"}"#)).find(|(s, _)| *s == 429);
    let (_, body) = throttled.expect("repeated wrong passwords are throttled with 429");
    assert!(body.contains("too many sign-in attempts"), "{body}");
    assert!(relay.metric("moq_relay_logins_total{result=\"throttled\"}").unwrap_or(0.0) >= 1.0);
}

#[test]
fn users_need_a_signing_key() {
    let out = Command::new(env!("CARGO_BIN_EXE_moq-relay")).args(["--users", "/nonexistent/users.toml"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--users needs --signing-key"), "{err}");
}

/// One of this machine's addresses that is not loopback: the source address
/// of a route out (no packet is sent by connecting a UDP socket).
fn non_loopback_address() -> IpAddr {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    s.connect("198.51.100.1:9").expect("this test needs a network interface with an IPv4 route (any; nothing is sent)");
    let ip = s.local_addr().unwrap().ip();
    assert!(!ip.is_loopback() && !ip.is_unspecified(), "no non-loopback address: {ip}");
    ip
}

#[tokio::test]
async fn without_a_key_the_relay_serves_this_machine_only_unless_opened() {
    let lan = non_loopback_address();
    let relay = Relay::start_on("0.0.0.0", &[]);
    assert!(relay.http_get("/access").contains(r#""mode":"loopback""#));
    assert!(open(&relay, None).await.is_ok(), "loopback clients may use a relay without keys");
    assert_eq!(open_via(&relay, lan, None).await.err(), Some(0x2), "a session from {lan} is refused UNAUTHORIZED");
    assert_eq!(relay.metric("moq_relay_auth_sessions_total{result=\"not_loopback\"}"), Some(1.0));

    let open_relay = Relay::start_on("0.0.0.0", &["--auth", "none"]);
    assert!(open_relay.http_get("/access").contains(r#""mode":"open""#));
    assert!(open_via(&open_relay, lan, None).await.is_ok(), "--auth none admits anyone");
}

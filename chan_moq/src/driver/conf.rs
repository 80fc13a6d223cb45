//! `moq.conf`: the driver's settings, in Asterisk's INI dialect
//! (`[section]`, `key = value`, `;` comments). Parsed here rather than with
//! `ast_config_load2` so the rules are unit-tested without Asterisk and a
//! bad file is reported with its line number; `module reload` re-reads it.

use std::path::PathBuf;
use std::time::Duration;

/// How the driver trusts the relay's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The platform's roots.
    System,
    /// A PEM file of trust anchors (`ca = /etc/asterisk/moq-ca.pem`).
    Ca(PathBuf),
    /// Any certificate (`insecure = yes`; for labs only).
    Insecure,
}

/// Audio codec on the Asterisk side of a MOQ channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// Opus packets pass through untouched (needs codec_opus_open_source
    /// for Asterisk to transcode to anything else).
    Opus,
    /// 48 kHz signed linear: chan_moq encodes and decodes Opus itself.
    Slin48,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `https://relay:4443/` (WebTransport) or `moqt://relay:4443` (raw QUIC).
    pub relay: url::Url,
    /// The MoQ user the PBX registers as (docs/CALLS.md §1: `pbx`).
    pub user: String,
    pub device: String,
    /// Display name in outgoing INVITEs.
    pub display: String,
    pub trust: Trust,
    /// Dialplan context for calls to `<user>/<ext>`.
    pub context: String,
    /// In order of preference; the first one Asterisk can use wins.
    pub codecs: Vec<Codec>,
    /// Seconds an outgoing call rings before it gives up (Dial's own timeout
    /// usually fires first).
    pub no_answer: Duration,
    /// First delay between reconnection attempts; doubles up to 30 s.
    pub reconnect: Duration,
    /// Access token for relays that check tokens (`token = …` from `moq-relay token`).
    pub token: Option<Vec<u8>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            relay: url::Url::parse("https://127.0.0.1:4443/").expect("static URL"),
            user: "pbx".into(),
            device: "asterisk".into(),
            display: "Asterisk".into(),
            trust: Trust::System,
            context: "moq-in".into(),
            codecs: vec![Codec::Opus, Codec::Slin48],
            no_answer: Duration::from_secs(60),
            reconnect: Duration::from_millis(500),
            token: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("moq.conf line {line}: {msg}")]
pub struct ConfError {
    pub line: usize,
    pub msg: String,
}

fn yes(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Some(true),
        "no" | "false" | "off" | "0" => Some(false),
        _ => None,
    }
}

impl Config {
    /// Parses the text of `moq.conf`. Unknown keys are errors: a typo must
    /// not silently leave a default in place.
    pub fn parse(text: &str) -> Result<Self, ConfError> {
        let mut c = Config::default();
        let mut section = String::new();
        let (mut ca, mut insecure) = (None, false);
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let err = |msg: String| ConfError { line, msg };
            let l = raw.split(';').next().unwrap_or("").trim();
            if l.is_empty() {
                continue;
            }
            if let Some(s) = l.strip_prefix('[') {
                section = s.strip_suffix(']').ok_or_else(|| err("section header without ']'".into()))?.trim().to_string();
                if section != "general" {
                    return Err(err(format!("unknown section [{section}]; only [general] exists")));
                }
                continue;
            }
            if section.is_empty() {
                return Err(err("settings must follow a [general] header".into()));
            }
            let (k, v) = l.split_once('=').ok_or_else(|| err(format!("expected 'key = value', got '{l}'")))?;
            let (k, v) = (k.trim().trim_end_matches('>').trim(), v.trim());
            let name = |v: &str| -> Result<String, ConfError> {
                pub_sub_audio::call::address::check_name(v).map_err(|e| err(e.to_string()))?;
                Ok(v.to_string())
            };
            match k {
                "relay" => c.relay = url::Url::parse(v).map_err(|e| err(format!("relay '{v}': {e}")))?,
                "user" => c.user = name(v)?,
                "device" => c.device = name(v)?,
                "display" => c.display = v.to_string(),
                "ca" => ca = Some(PathBuf::from(v)),
                "insecure" => insecure = yes(v).ok_or_else(|| err(format!("insecure must be yes or no, not '{v}'")))?,
                "context" if !v.is_empty() => c.context = v.to_string(),
                "codecs" => {
                    let mut list = Vec::new();
                    for name in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        list.push(match name {
                            "opus" => Codec::Opus,
                            "slin48" => Codec::Slin48,
                            other => return Err(err(format!("codec '{other}' is not supported (use opus, slin48)"))),
                        });
                    }
                    if list.is_empty() {
                        return Err(err("codecs must name at least one codec".into()));
                    }
                    c.codecs = list;
                }
                "no_answer" => c.no_answer = Duration::from_secs(v.parse().map_err(|_| err(format!("no_answer '{v}' is not seconds")))?),
                "reconnect_ms" => {
                    c.reconnect = Duration::from_millis(v.parse().map_err(|_| err(format!("reconnect_ms '{v}' is not a number")))?)
                }
                "token" => {
                    let t = moq_client::token_from_text(v)
                        .ok_or_else(|| err("token is not a token from `moq-relay token` (base64url)".into()))?;
                    c.token = Some(t);
                }
                other => return Err(err(format!("unknown setting '{other}'"))),
            }
        }
        c.trust = match (ca, insecure) {
            (_, true) => Trust::Insecure,
            (Some(p), false) => Trust::Ca(p),
            (None, false) => Trust::System,
        };
        Ok(c)
    }

    pub fn tls(&self) -> moq_client::Tls {
        match &self.trust {
            Trust::System => moq_client::Tls::System,
            Trust::Ca(p) => moq_client::Tls::Ca(p.clone()),
            Trust::Insecure => moq_client::Tls::DisableVerify,
        }
    }

    /// Whether a new configuration can be applied without touching live
    /// calls: anything but the MoQ session's identity and relay.
    pub fn same_session(&self, other: &Config) -> bool {
        self.relay == other.relay && self.user == other.user && self.device == other.device && self.trust == other.trust
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file() {
        let c = Config::parse(
            "; chan_moq\n[general]\nrelay = moqt://10.0.0.1:4443\nuser=pbx\ndevice = ast1 ; comment\nca=/etc/ca.pem\n\
             context = from-moq\ncodecs = slin48, opus\nno_answer = 30\nreconnect_ms=250\n",
        )
        .unwrap();
        assert_eq!(c.relay.as_str(), "moqt://10.0.0.1:4443");
        assert_eq!(c.device, "ast1");
        assert_eq!(c.trust, Trust::Ca("/etc/ca.pem".into()));
        assert_eq!(c.context, "from-moq");
        assert_eq!(c.codecs, vec![Codec::Slin48, Codec::Opus]);
        assert_eq!(c.no_answer, Duration::from_secs(30));
        assert_eq!(c.reconnect, Duration::from_millis(250));
    }

    #[test]
    fn empty_file_gives_defaults() {
        assert_eq!(Config::parse("").unwrap(), Config::default());
    }

    #[test]
    fn insecure_wins_over_ca() {
        let c = Config::parse("[general]\nca = /x.pem\ninsecure = yes\n").unwrap();
        assert_eq!(c.trust, Trust::Insecure);
    }

    #[test]
    fn errors_name_the_line() {
        assert_eq!(Config::parse("[general]\nrelya = x\n").unwrap_err().line, 2);
        assert!(Config::parse("[general]\nrelay = not a url\n").unwrap_err().msg.contains("relay"));
        assert!(Config::parse("[general]\ncodecs = g729\n").unwrap_err().msg.contains("g729"));
        assert!(Config::parse("[general]\nuser = Bad User\n").is_err());
        assert!(Config::parse("user = pbx\n").unwrap_err().msg.contains("[general]"));
        assert!(Config::parse("[sip]\n").is_err());
        assert!(Config::parse("[general]\ninsecure = maybe\n").is_err());
    }

    #[test]
    fn reload_scope() {
        let a = Config::default();
        let b = Config { context: "other".into(), ..Config::default() };
        assert!(a.same_session(&b));
        let c = Config { device: "x".into(), ..Config::default() };
        assert!(!a.same_session(&c));
    }
}

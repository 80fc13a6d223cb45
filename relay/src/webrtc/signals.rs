//! What goes over moq-dc/1 channels (docs/design/webrtc.md §2.3): channel
//! kinds by label, messages, the stream signals and the `moq-gw` JSON
//! messages — parsed and written here, judged by [`super::streams`].

use bytes::Bytes;

/// What a channel carries, from its label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `moq-uni`: a unidirectional MoQ stream (the first is the control stream).
    Uni,
    /// `moq-bi`: a bidirectional MoQ stream (a request, §3.3).
    Bi,
    /// `moq-gw`: gateway control messages.
    Gateway,
    /// `moq-dgram`: OBJECT_DATAGRAMs, unordered and unreliable.
    Datagrams,
}

impl Kind {
    pub fn from_label(label: &str) -> Option<Self> {
        Some(match label {
            "moq-uni" => Kind::Uni,
            "moq-bi" => Kind::Bi,
            "moq-gw" => Kind::Gateway,
            "moq-dgram" => Kind::Datagrams,
            _ => return None,
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            Kind::Uni => "moq-uni",
            Kind::Bi => "moq-bi",
            Kind::Gateway => "moq-gw",
            Kind::Datagrams => "moq-dgram",
        }
    }
}

/// Who opened a channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opener {
    Us,
    Them,
}

/// One data channel message (RFC 8831 §6.6: binary or string PPID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Binary(Bytes),
    Text(String),
}

impl Message {
    pub fn size(&self) -> usize {
        match self {
            Message::Binary(b) => b.len(),
            Message::Text(t) => t.len(),
        }
    }
}

/// A `moq-gw` message (design §2.3, §3). Which side may send which is the
/// shells' business: the gateway takes `audio-out` / `audio-in`, both take
/// `close`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GwMessage {
    /// `{"t":"close","code":N,"reason":"…"}`: the session closes with this
    /// code (§3.5); sent before the PeerConnection goes, so the page learns why.
    Close { code: u32, reason: String },
    /// `{"t":"audio-out","alias":A|null,"priority":P}`: RTP from the browser
    /// becomes datagrams on alias A (null: stop). `priority` defaults to 128.
    AudioOut { alias: Option<u64>, priority: u8 },
    /// `{"t":"audio-in","alias":M|null}`: datagrams of alias M go out as RTP.
    AudioIn { alias: Option<u64> },
}

impl GwMessage {
    /// Parses one text message; `None` is a protocol violation. Extra fields
    /// are ignored; the known ones must have their types.
    pub fn parse(text: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let o = v.as_object()?;
        let alias = |o: &serde_json::Map<String, serde_json::Value>| match o.get("alias")? {
            serde_json::Value::Null => Some(None),
            a => a.as_u64().map(Some),
        };
        Some(match o.get("t")?.as_str()? {
            "close" => GwMessage::Close {
                code: u32::try_from(o.get("code")?.as_u64()?).ok()?,
                reason: match o.get("reason") {
                    None => String::new(),
                    Some(r) => r.as_str()?.to_owned(),
                },
            },
            "audio-out" => GwMessage::AudioOut {
                alias: alias(o)?,
                priority: match o.get("priority") {
                    None => 128,
                    Some(p) => u8::try_from(p.as_u64()?).ok()?,
                },
            },
            "audio-in" => GwMessage::AudioIn { alias: alias(o)? },
            _ => return None,
        })
    }

    /// The text sent, keys in the order the design writes them (what
    /// `JSON.stringify` gives the TypeScript copy).
    pub fn to_text(&self) -> String {
        let alias = |a: &Option<u64>| a.map_or("null".to_owned(), |a| a.to_string());
        match self {
            GwMessage::Close { code, reason } => {
                format!(r#"{{"t":"close","code":{code},"reason":{}}}"#, serde_json::Value::from(reason.as_str()))
            }
            GwMessage::AudioOut { alias: a, priority } => format!(r#"{{"t":"audio-out","alias":{},"priority":{priority}}}"#, alias(a)),
            GwMessage::AudioIn { alias: a } => format!(r#"{{"t":"audio-in","alias":{}}}"#, alias(a)),
        }
    }
}

/// A text message on a stream channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Fin,
    Reset(u32),
    Stop(u32),
}

impl Signal {
    /// Exactly `fin`, `reset <code>` or `stop <code>`, the code in decimal
    /// without sign or leading zeros, at most `u32::MAX`.
    pub fn parse(t: &str) -> Option<Self> {
        if t == "fin" {
            return Some(Signal::Fin);
        }
        let (word, code) = t.split_once(' ')?;
        let canonical = !code.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) && (code == "0" || !code.starts_with('0'));
        let code: u32 = code.parse().ok().filter(|_| canonical)?;
        match word {
            "reset" => Some(Signal::Reset(code)),
            "stop" => Some(Signal::Stop(code)),
            _ => None,
        }
    }
}

impl std::fmt::Display for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signal::Fin => f.write_str("fin"),
            Signal::Reset(c) => write!(f, "reset {c}"),
            Signal::Stop(c) => write!(f, "stop {c}"),
        }
    }
}

/// A peer's text, shortened for a log line.
pub fn clip(t: &str) -> &str {
    let mut end = t.len().min(64);
    while !t.is_char_boundary(end) {
        end -= 1;
    }
    &t[..end]
}

//! One MOQ channel: the bridge between an Asterisk channel and one MoQ call
//! (pub-sub-audio's `Phone::call` / `Phone::take`). Asterisk's callbacks
//! become user actions and audio for the call; the call's progress becomes
//! control frames, DTMF, audio and finally a hangup cause on the channel.

use super::causes;
use super::conf::Codec;
use super::{Gateway, LegView};
use crate::ast::tech::{self, Leg, NewChannel, Requester};
use crate::ast::{self, Channel, Control, Format, Level, ModuleRef};
use pub_sub_audio::call::{Address, EndReason, UserAction};
use pub_sub_audio::phone::media::{AudioFrame, LivePort, MediaConfig};
use pub_sub_audio::phone::{Incoming, Phone, Progress};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Frames buffered each way (20 ms each): enough to ride out a scheduling
/// hiccup, small enough that a stalled side costs ~1 s of memory at most.
const AUDIO_QUEUE: usize = 50;

pub struct MoqLeg {
    gw: Arc<Gateway>,
    id: u64,
    user: mpsc::UnboundedSender<UserAction>,
    /// Taken when the call starts.
    start: Mutex<Option<(mpsc::UnboundedReceiver<UserAction>, mpsc::Receiver<AudioFrame>)>>,
    audio: mpsc::Sender<AudioFrame>,
    format: Format,
    /// Keeps the module loaded while the channel exists.
    _module: ModuleRef,
}

impl MoqLeg {
    fn new(gw: &Arc<Gateway>, view: LegView) -> Arc<MoqLeg> {
        let (user, user_rx) = mpsc::unbounded_channel();
        let (audio, audio_rx) = mpsc::channel(AUDIO_QUEUE);
        let format = match gw.config().codecs.iter().find(|c| match c {
            Codec::Opus => Format::Opus.available(),
            Codec::Slin48 => Format::Slin48.available(),
        }) {
            Some(Codec::Opus) => Format::Opus,
            _ => Format::Slin48,
        };
        Arc::new(MoqLeg {
            gw: gw.clone(),
            id: gw.track(view),
            user,
            start: Mutex::new(Some((user_rx, audio_rx))),
            audio,
            format,
            _module: ModuleRef::take(),
        })
    }

    fn formats(&self) -> Vec<Format> {
        let other = if self.format == Format::Opus { Format::Slin48 } else { Format::Opus };
        vec![self.format, other]
    }

    /// The call's media: our side's audio comes from `write`, the peer's is
    /// queued onto the channel once it exists (`chan`).
    fn media(&self, audio_rx: mpsc::Receiver<AudioFrame>, chan: tokio::sync::oneshot::Receiver<Channel>) -> MediaConfig {
        let (to_user, mut played) = mpsc::channel::<AudioFrame>(AUDIO_QUEUE);
        let format = self.format;
        self.gw.rt.spawn(async move {
            let Ok(chan) = chan.await else { return };
            while let Some(f) = played.recv().await {
                match f {
                    AudioFrame::Pcm(pcm) => {
                        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_ne_bytes()).collect();
                        chan.queue_voice(Format::Slin48, pcm.len(), &bytes);
                    }
                    AudioFrame::Opus(p) if format == Format::Opus => chan.queue_voice(Format::Opus, Format::FRAME_SAMPLES, &p),
                    AudioFrame::Opus(_) => {}
                }
            }
        });
        MediaConfig { live: Some(LivePort { from_user: audio_rx, to_user, opus: format == Format::Opus }), ..Default::default() }
    }
}

impl Leg for MoqLeg {
    fn call(&self, chan: &Channel, dest: &str) -> Result<(), String> {
        let addr = dial_address(dest).map_err(|e| e.to_string())?;
        let phone = self.gw.phone().ok_or("not registered with the relay")?;
        let (user_rx, audio_rx) = self.start.lock().unwrap_or_else(|e| e.into_inner()).take().ok_or("call already started")?;
        let (chan_tx, chan_rx) = tokio::sync::oneshot::channel();
        let _ = chan_tx.send(chan.clone());
        let media = self.media(audio_rx, chan_rx);
        let (report, progress) = mpsc::unbounded_channel();
        let (gw, id, chan) = (self.gw.clone(), self.id, chan.clone());
        let name = chan.name();
        gw.update(id, |v| {
            v.channel = name;
            v.state = "calling".into();
        });
        self.gw.rt.spawn(follow(gw.clone(), id, chan, progress, Direction::Out));
        self.gw.rt.spawn(async move {
            let out = phone.call(&addr, media, user_rx, report).await;
            ast::log(Level::Debug, &format!("MOQ call to {addr} ended: {:?}", out.reason));
        });
        Ok(())
    }

    fn answer(&self) {
        let _ = self.user.send(UserAction::Answer);
    }

    fn write(&self, format: Format, data: &[u8]) {
        let frame = match format {
            Format::Slin48 => AudioFrame::Pcm(data.chunks_exact(2).map(|b| i16::from_ne_bytes([b[0], b[1]])).collect()),
            Format::Opus => AudioFrame::Opus(bytes::Bytes::copy_from_slice(data)),
        };
        // A full queue means the call is not consuming: drop, never block Asterisk.
        let _ = self.audio.try_send(frame);
    }

    fn digit(&self, digit: char, _duration_ms: u32) {
        let _ = self.user.send(UserAction::Dtmf { digit });
    }

    fn hold(&self, on: bool) {
        let _ = self.user.send(if on { UserAction::Hold } else { UserAction::Unhold });
    }

    fn hangup(&self, cause: i32) {
        let action = if causes::rejects_as_busy(cause) { UserAction::Decline } else { UserAction::Hangup };
        let _ = self.user.send(action);
        self.gw.untrack(self.id);
    }
}

/// The MoQ address in a dial string `MOQ/<user>[/<ext>[/…]]` (the text
/// after `MOQ/`): its first two fields; anything after is reserved for options.
fn dial_address(dest: &str) -> Result<Address, pub_sub_audio::call::AddressError> {
    let mut fields = dest.splitn(3, '/');
    let user = fields.next().unwrap_or_default();
    match fields.next() {
        Some(ext) => Address::parse(&format!("{user}/{ext}")),
        None => Address::parse(user),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Out,
    In,
}

/// Turns call progress into what the channel shows, until the call ends.
async fn follow(gw: Arc<Gateway>, id: u64, chan: Channel, mut progress: mpsc::UnboundedReceiver<Progress>, dir: Direction) {
    while let Some(p) = progress.recv().await {
        match p {
            Progress::Session { sid } => {
                chan.set_var("MOQ_SID", &sid);
                gw.update(id, |v| v.sid = sid);
            }
            Progress::Ringing { on: true } if dir == Direction::Out => {
                chan.queue_control(Control::Ringing);
                gw.update(id, |v| v.state = "ringing".into());
            }
            Progress::Established { device } => {
                if dir == Direction::Out {
                    chan.queue_control(Control::Answer);
                }
                if let Some(d) = device {
                    chan.set_var("MOQ_REMOTE_DEVICE", &d);
                }
                gw.update(id, |v| v.state = "up".into());
            }
            Progress::Dtmf { digit } => chan.queue_dtmf(digit, 100),
            Progress::PeerHold { on } => chan.queue_control(if on { Control::Hold } else { Control::Unhold }),
            Progress::Ended(reason) => {
                let e = causes::ending(&reason);
                if e.busy_signal {
                    chan.queue_control(Control::Busy);
                }
                chan.set_var("MOQ_END", &pub_sub_audio::phone::driver::describe(&reason));
                chan.queue_hangup(e.cause);
                gw.update(id, |v| v.state = format!("ended ({})", pub_sub_audio::phone::driver::describe(&reason)));
                if reason == EndReason::LostPeer {
                    ast::log(Level::Notice, &format!("{}: lost the MoQ peer", chan.name()));
                }
            }
            Progress::Error(e) => ast::log(Level::Warning, &format!("{}: {e}", chan.name())),
            _ => {}
        }
    }
}

/// An incoming MoQ call: once its INVITE names an extension, a channel
/// enters the dialplan at `<context>,<ext>,1` with the caller id set.
pub fn inbound(gw: &Arc<Gateway>, phone: Phone, inc: Incoming) {
    let cfg = gw.config();
    let view = LegView { direction: "in", remote: inc.from.clone(), sid: inc.sid.clone(), state: "invited".into(), ..Default::default() };
    let leg = MoqLeg::new(gw, view);
    let Some((user_rx, audio_rx)) = leg.start.lock().unwrap_or_else(|e| e.into_inner()).take() else { return };
    let (chan_tx, chan_rx) = tokio::sync::oneshot::channel::<Channel>();
    let media = leg.media(audio_rx, chan_rx);
    let (report, mut progress) = mpsc::unbounded_channel();
    let gw2 = gw.clone();
    let sid = inc.sid.clone();
    gw.rt.spawn(async move {
        // The channel exists only once the INVITE names the extension.
        let mut leg = Some(leg);
        let mut chan_tx = Some(chan_tx);
        while let Some(p) = progress.recv().await {
            match p {
                Progress::Invited { from, to, display } => {
                    let Some(l) = leg.take() else { continue };
                    let ext = Address::parse(&to).ok().and_then(|a| a.ext).unwrap_or_else(|| "s".into());
                    let name = if display.is_empty() { from.clone() } else { display };
                    let formats = l.formats();
                    let n = NewChannel {
                        dest: &from,
                        state: crate::sys::AST_STATE_RING,
                        context: &cfg.context,
                        exten: &ext,
                        cid_num: &from,
                        cid_name: &name,
                        formats: &formats,
                    };
                    let vars = [("MOQ_SID", sid.as_str()), ("MOQ_REMOTE", from.as_str()), ("MOQ_TO", to.as_str())];
                    let id = l.id;
                    match tech::start_inbound(&n, l.clone(), &vars) {
                        Ok(chan) => {
                            // Not inside `update`: `name` locks the channel, and tech
                            // callbacks (channel locked) take the legs lock.
                            let name = chan.name();
                            gw2.update(id, |v| {
                                v.channel = name;
                                v.state = format!("ringing {ext}@{}", cfg.context);
                            });
                            if let Some(tx) = chan_tx.take() {
                                let _ = tx.send(chan.clone());
                            }
                            drop(l);
                            follow(gw2.clone(), id, chan, progress, Direction::In).await;
                            return;
                        }
                        Err(e) => {
                            ast::log(Level::Warning, &format!("MoQ call from {from} to {to}: {e}; declining"));
                            let _ = l.user.send(UserAction::Decline);
                            gw2.untrack(id);
                        }
                    }
                }
                Progress::Ended(_) => {
                    if let Some(l) = leg.take() {
                        gw2.untrack(l.id);
                    }
                }
                _ => {}
            }
        }
    });
    gw.rt.spawn(async move {
        phone.take(&inc, media, user_rx, report).await;
    });
}

impl Requester for Gateway {
    fn request(&self, dest: &str) -> Result<Arc<dyn Leg>, i32> {
        if dial_address(dest).is_err() {
            ast::log(Level::Warning, &format!("MOQ/{dest}: not a MoQ address (user or user/ext)"));
            return Err(causes::q850::NO_ROUTE_DESTINATION);
        }
        if self.phone().is_none() {
            ast::log(Level::Warning, &format!("MOQ/{dest}: not registered with the relay; call refused"));
            return Err(causes::q850::NETWORK_OUT_OF_ORDER);
        }
        let gw = super::gateway().ok_or(causes::q850::NETWORK_OUT_OF_ORDER)?;
        let view = LegView { direction: "out", remote: dest.to_string(), state: "requested".into(), ..Default::default() };
        Ok(MoqLeg::new(&gw, view))
    }

    fn formats(&self) -> Vec<Format> {
        vec![Format::Slin48, Format::Opus]
    }
}

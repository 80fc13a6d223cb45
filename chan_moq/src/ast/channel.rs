//! A counted reference to an Asterisk channel and the operations a driver
//! performs on it from its own threads: queueing frames and controls,
//! hanging up with a cause, setting variables (`channel.h`).

use super::{cstring, from_c, Format};
use crate::sys;
use core::ffi::c_void;
use std::ptr::NonNull;

/// Control frames the driver queues (`AST_CONTROL_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Ringing,
    Answer,
    Busy,
    Progress,
    Hold,
    Unhold,
}

impl Control {
    fn raw(self) -> sys::ast_control_frame_type {
        match self {
            Control::Ringing => sys::AST_CONTROL_RINGING,
            Control::Answer => sys::AST_CONTROL_ANSWER,
            Control::Busy => sys::AST_CONTROL_BUSY,
            Control::Progress => sys::AST_CONTROL_PROGRESS,
            Control::Hold => sys::AST_CONTROL_HOLD,
            Control::Unhold => sys::AST_CONTROL_UNHOLD,
        }
    }
}

/// One ao2 reference to a channel. Cloning takes another; dropping
/// releases it. The channel object stays valid while any reference lives,
/// even after hangup (queueing onto a hung-up channel is a no-op).
pub struct Channel(NonNull<sys::ast_channel>);

// SAFETY: channels are ao2 objects; every function used through this type
// takes the channel lock itself (ast_queue_frame, pbx_builtin_setvar_helper…)
// or reads immutable fields (name, uniqueid).
unsafe impl Send for Channel {}
unsafe impl Sync for Channel {}

impl Channel {
    /// Takes a new reference to a channel Asterisk handed us.
    ///
    /// # Safety
    /// `p` is a live channel for the duration of the call.
    pub(crate) unsafe fn from_borrowed(p: *mut sys::ast_channel) -> Option<Channel> {
        let p = NonNull::new(p)?;
        // SAFETY: live object; +1.
        unsafe { sys::__ao2_ref(p.as_ptr().cast(), 1, c"chan_moq".as_ptr(), c"channel.rs".as_ptr(), 0, c"from_borrowed".as_ptr()) };
        Some(Channel(p))
    }

    pub(crate) fn raw(&self) -> *mut sys::ast_channel {
        self.0.as_ptr()
    }

    pub fn name(&self) -> String {
        // SAFETY: the name is a string field of a live channel.
        unsafe { from_c(sys::ast_channel_name(self.raw())) }.unwrap_or_default()
    }

    pub fn uniqueid(&self) -> String {
        // SAFETY: as above.
        unsafe { from_c(sys::ast_channel_uniqueid(self.raw())) }.unwrap_or_default()
    }

    pub fn queue_control(&self, c: Control) {
        // SAFETY: live channel; the core copies the control frame.
        unsafe { sys::ast_queue_control(self.raw(), c.raw()) };
    }

    /// Queues 20 ms of audio (`samples` at 48 kHz) towards Asterisk. The
    /// core copies the frame, so `data` may be a temporary.
    pub fn queue_voice(&self, format: Format, samples: usize, data: &[u8]) {
        let raw = format.raw();
        if raw.is_null() || data.is_empty() {
            return;
        }
        // SAFETY: ast_frame is plain data; zeroed is its C initial state.
        let mut f: sys::ast_frame = unsafe { std::mem::zeroed() };
        f.frametype = sys::AST_FRAME_VOICE;
        f.subclass.__bindgen_anon_1.format = raw;
        f.datalen = data.len() as i32;
        f.samples = samples as i32;
        f.data.ptr = data.as_ptr() as *mut c_void;
        f.src = c"chan_moq".as_ptr();
        // SAFETY: the frame and its data live across the call; the core
        // duplicates both (`ast_queue_frame` → `ast_frdup`).
        unsafe { sys::ast_queue_frame(self.raw(), &mut f) };
    }

    /// Queues a whole DTMF digit (`AST_FRAME_DTMF_END` with its length; the
    /// core emulates the begin).
    pub fn queue_dtmf(&self, digit: char, duration_ms: u32) {
        // SAFETY: as in queue_voice.
        let mut f: sys::ast_frame = unsafe { std::mem::zeroed() };
        f.frametype = sys::AST_FRAME_DTMF_END;
        f.subclass.integer = digit as i32;
        f.len = duration_ms as _;
        f.src = c"chan_moq".as_ptr();
        // SAFETY: the core copies the frame.
        unsafe { sys::ast_queue_frame(self.raw(), &mut f) };
    }

    /// Asks the core to hang the channel up with a Q.850 cause.
    pub fn queue_hangup(&self, cause: i32) {
        // SAFETY: live channel.
        unsafe { sys::ast_queue_hangup_with_cause(self.raw(), cause) };
    }

    /// Soft hangup from outside the channel's thread (module unload).
    pub fn soft_hangup(&self) {
        // SAFETY: ast_softhangup locks the channel itself.
        unsafe { sys::ast_softhangup(self.raw(), sys::AST_SOFTHANGUP_APPUNLOAD as i32) };
    }

    pub fn set_var(&self, name: &str, value: &str) {
        let (n, v) = (cstring(name), cstring(value));
        // SAFETY: setvar locks the channel; both strings live across the call.
        unsafe { sys::pbx_builtin_setvar_helper(self.raw(), n.as_ptr(), v.as_ptr()) };
    }
}

impl Clone for Channel {
    fn clone(&self) -> Self {
        // SAFETY: we hold a reference, so the object is live.
        unsafe { Channel::from_borrowed(self.raw()) }.expect("non-null")
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // SAFETY: releases the reference this value owns.
        unsafe { sys::__ao2_ref(self.raw().cast(), -1, c"chan_moq".as_ptr(), c"channel.rs".as_ptr(), 0, c"drop".as_ptr()) };
    }
}

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

// SAFETY: a `Channel` owns one ao2 reference, and ao2 reference counts are
// atomic, so the reference may be taken and released on any thread. The
// pointer is valid as long as the reference lives, whichever thread holds it.
unsafe impl Send for Channel {}
// SAFETY: `&Channel` only allows the methods below, each of which is safe to
// call concurrently on one channel: the queueing functions, `ast_softhangup`
// and `pbx_builtin_setvar_helper` take the channel lock themselves, and
// `name`/`uniqueid` take it (`locked`) around their reads.
unsafe impl Sync for Channel {}

impl Channel {
    /// Takes a new reference to a channel Asterisk handed us.
    ///
    /// # Safety
    /// `p` is NULL or points to a live channel (an ao2 object whose reference
    /// count is above zero) for the duration of the call, e.g. because the
    /// caller holds a reference or is inside a tech callback for it.
    pub(crate) unsafe fn from_borrowed(p: *mut sys::ast_channel) -> Option<Channel> {
        let p = NonNull::new(p)?;
        // SAFETY: the caller guarantees `p` is a live ao2 object, so adding a
        // reference is allowed (the count is above zero and atomic); the new
        // reference is owned by the returned `Channel` and released in `drop`.
        unsafe { sys::__ao2_ref(p.as_ptr().cast(), 1, c"chan_moq".as_ptr(), c"channel.rs".as_ptr(), 0, c"from_borrowed".as_ptr()) };
        Some(Channel(p))
    }

    pub(crate) fn raw(&self) -> *mut sys::ast_channel {
        self.0.as_ptr()
    }

    /// The channel's name (`MOQ/alice-0000002a`). Takes the channel lock for
    /// the copy (a masquerade renames a channel under that lock): don't call it
    /// while holding a lock that a [`super::tech::Leg`] callback takes, since
    /// those run with the channel locked.
    pub fn name(&self) -> String {
        self.locked(|c| {
            // SAFETY: `c` is live (we hold a reference) and locked by `locked`,
            // so the name, a NUL-terminated string in the channel's string-field
            // pool, is neither rewritten nor freed while `from_c` copies it.
            unsafe { from_c(sys::ast_channel_name(c)) }
        })
        .unwrap_or_default()
    }

    /// The channel's unique id. Takes the channel lock, like [`Channel::name`]
    /// (a masquerade swaps unique ids under it).
    pub fn uniqueid(&self) -> String {
        self.locked(|c| {
            // SAFETY: `c` is live and locked (see `name`); the unique id is a
            // NUL-terminated buffer inside the channel, copied by `from_c`.
            unsafe { from_c(sys::ast_channel_uniqueid(c)) }
        })
        .unwrap_or_default()
    }

    /// Runs `f` with the channel locked (`ast_channel_lock`). `f` must not
    /// unwind (it would leave the channel locked) and must not block.
    fn locked<T>(&self, f: impl FnOnce(*mut sys::ast_channel) -> T) -> T {
        let c = self.raw();
        // SAFETY: `c` is a live ao2 object (we hold a reference) allocated with a
        // recursive mutex, so this thread may lock it even if a tech callback up
        // the stack already holds it; the strings are static.
        unsafe { sys::__ao2_lock(c.cast(), sys::AO2_LOCK_REQ_MUTEX, c"channel.rs".as_ptr(), c"locked".as_ptr(), 0, c"chan".as_ptr()) };
        let v = f(c);
        // SAFETY: releases the lock taken above, on the same thread and object.
        unsafe { sys::__ao2_unlock(c.cast(), c"channel.rs".as_ptr(), c"locked".as_ptr(), 0, c"chan".as_ptr()) };
        v
    }

    pub fn queue_control(&self, c: Control) {
        // SAFETY: `self` holds a reference, so the channel is live for the call;
        // `ast_queue_control` locks it itself and copies the frame it builds.
        unsafe { sys::ast_queue_control(self.raw(), c.raw()) };
    }

    /// Queues 20 ms of audio (`samples` at 48 kHz) towards Asterisk. The
    /// core copies the frame, so `data` may be a temporary.
    pub fn queue_voice(&self, format: Format, samples: usize, data: &[u8]) {
        let raw = format.raw();
        if raw.is_null() || data.is_empty() {
            return;
        }
        // SAFETY: `ast_frame` is a C struct of integers, raw pointers, unions of
        // those and a `timeval`: all-zero bytes are a valid value of every field
        // (NULL pointers, 0), and it is what C's `struct ast_frame f = { 0, }` makes.
        let mut f: sys::ast_frame = unsafe { std::mem::zeroed() };
        f.frametype = sys::AST_FRAME_VOICE;
        f.subclass.__bindgen_anon_1.format = raw;
        f.datalen = data.len() as i32;
        f.samples = samples as i32;
        f.data.ptr = data.as_ptr() as *mut c_void;
        f.src = c"chan_moq".as_ptr();
        // SAFETY: `self` holds a reference, so the channel is live; `f` and the
        // `data` it points to (`datalen` bytes) live across the call, and
        // `ast_queue_frame` locks the channel and duplicates both (`ast_frdup`:
        // `mallocd` is 0, so it copies) before returning, keeping no pointer to
        // either. The core only reads `data` although the field is `*mut`.
        unsafe { sys::ast_queue_frame(self.raw(), &mut f) };
    }

    /// Queues a whole DTMF digit (`AST_FRAME_DTMF_END` with its length; the
    /// core emulates the begin).
    pub fn queue_dtmf(&self, digit: char, duration_ms: u32) {
        // SAFETY: all-zero bytes are a valid `ast_frame` (see `queue_voice`).
        let mut f: sys::ast_frame = unsafe { std::mem::zeroed() };
        f.frametype = sys::AST_FRAME_DTMF_END;
        f.subclass.integer = digit as i32;
        f.len = duration_ms as _;
        f.src = c"chan_moq".as_ptr();
        // SAFETY: live channel (we hold a reference); `f` has no data pointer and
        // lives across the call, and `ast_queue_frame` copies it under the lock.
        unsafe { sys::ast_queue_frame(self.raw(), &mut f) };
    }

    /// Asks the core to hang the channel up with a Q.850 cause.
    pub fn queue_hangup(&self, cause: i32) {
        // SAFETY: `self` holds a reference, so the channel is live for the call;
        // `ast_queue_hangup_with_cause` takes the channel lock itself.
        unsafe { sys::ast_queue_hangup_with_cause(self.raw(), cause) };
    }

    /// Soft hangup from outside the channel's thread (module unload).
    pub fn soft_hangup(&self) {
        // SAFETY: `self` holds a reference, so the channel is live for the call;
        // `ast_softhangup` (unlike `_nolock`) takes the channel lock itself.
        unsafe { sys::ast_softhangup(self.raw(), sys::AST_SOFTHANGUP_APPUNLOAD as i32) };
    }

    pub fn set_var(&self, name: &str, value: &str) {
        let (n, v) = (cstring(name), cstring(value));
        // SAFETY: `self` holds a reference, so the channel is live; `n` and `v`
        // are NUL-terminated and outlive the call, and the core copies them;
        // `pbx_builtin_setvar_helper` takes the channel lock itself.
        unsafe { sys::pbx_builtin_setvar_helper(self.raw(), n.as_ptr(), v.as_ptr()) };
    }
}

impl Clone for Channel {
    fn clone(&self) -> Self {
        // SAFETY: `self` holds a reference, so the channel is live for the call,
        // as `from_borrowed` requires.
        unsafe { Channel::from_borrowed(self.raw()) }.expect("non-null")
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // SAFETY: releases the one reference this value owns (taken in
        // `from_borrowed`); the object was live until this call, and the pointer
        // is not used afterwards. ao2 reference counts are atomic: any thread.
        unsafe { sys::__ao2_ref(self.raw().cast(), -1, c"chan_moq".as_ptr(), c"channel.rs".as_ptr(), 0, c"drop".as_ptr()) };
    }
}

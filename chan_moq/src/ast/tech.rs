//! The `MOQ` channel technology (`struct ast_channel_tech`): registration,
//! channel allocation, and the C callbacks, each a trampoline into a safe
//! [`Leg`] that the driver implements.
//!
//! Ownership: a channel's `tech_pvt` holds a `Box<Arc<dyn Leg>>`; it is
//! created when the channel is allocated and taken back exactly once, in the
//! `hangup` callback, which Asterisk calls with the channel locked, after
//! which no other callback runs for that channel.

use super::{cstring, from_c, Channel, Format};
use crate::sys;
use core::ffi::{c_char, c_int, c_uint, c_void};
use std::cell::UnsafeCell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{null, null_mut, NonNull};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

/// One MOQ channel as the driver sees it. Every method is called from an
/// Asterisk thread with the channel locked: return quickly, never block.
pub trait Leg: Send + Sync + 'static {
    /// `Dial()`: start the outgoing MoQ call to `dest` (the text after `MOQ/`).
    fn call(&self, chan: &Channel, dest: &str) -> Result<(), String>;
    /// The dialplan answered an incoming call.
    fn answer(&self);
    /// Audio from Asterisk, in one of our formats.
    fn write(&self, format: Format, data: &[u8]);
    fn digit(&self, digit: char, duration_ms: u32);
    fn hold(&self, on: bool);
    /// The channel is gone (its `hangupcause` given); release everything.
    fn hangup(&self, cause: i32);
}

/// Creates legs for `Dial(MOQ/...)`.
pub trait Requester: Send + Sync + 'static {
    /// A leg for `dest`, or the Q.850 cause why not.
    fn request(&self, dest: &str) -> Result<Arc<dyn Leg>, i32>;
    /// Formats of new channels, best first.
    fn formats(&self) -> Vec<Format>;
}

struct TechCell(UnsafeCell<Option<sys::ast_channel_tech>>);
// SAFETY: written only in register/unregister (module load/unload, which the
// loader serialises); Asterisk reads it otherwise.
unsafe impl Sync for TechCell {}

static TECH: TechCell = TechCell(UnsafeCell::new(None));
static REQUESTER: RwLock<Option<Arc<dyn Requester>>> = RwLock::new(None);
static CAPS: RwLock<Option<super::format::Caps>> = RwLock::new(None);
static SEQ: AtomicU32 = AtomicU32::new(0);

/// Registers the `MOQ` technology. Call once from `load`.
pub fn register(requester: Arc<dyn Requester>) -> Result<(), String> {
    let caps = super::format::Caps::new(&[Format::Opus, Format::Slin48]).ok_or("cannot allocate format capabilities")?;
    // SAFETY: an all-zero ast_channel_tech is its C initial state (NULL
    // callbacks are "not supported").
    let mut t: sys::ast_channel_tech = unsafe { std::mem::zeroed() };
    t.type_ = c"MOQ".as_ptr();
    t.description = c"Media over QUIC phone calls (docs/CALLS.md)".as_ptr();
    t.capabilities = caps.raw();
    t.requester = Some(requester_cb);
    t.call = Some(call_cb);
    t.hangup = Some(hangup_cb);
    t.answer = Some(answer_cb);
    t.read = Some(read_cb);
    t.write = Some(write_cb);
    t.indicate = Some(indicate_cb);
    t.send_digit_end = Some(digit_end_cb);
    *REQUESTER.write().unwrap_or_else(|e| e.into_inner()) = Some(requester);
    *CAPS.write().unwrap_or_else(|e| e.into_inner()) = Some(caps);
    // SAFETY: load/unload are serialised; the struct then stays put in a
    // static for as long as it is registered.
    unsafe {
        *TECH.0.get() = Some(t);
        let p = (*TECH.0.get()).as_ref().map_or(null(), |t| t as *const _);
        if sys::ast_channel_register(p) != 0 {
            *TECH.0.get() = None;
            return Err("ast_channel_register failed (is another MOQ technology loaded?)".into());
        }
    }
    Ok(())
}

/// Unregisters the technology (from `unload`). Channels still up keep
/// working until they hang up: their callbacks stay valid because the
/// module is pinned by their [`super::ModuleRef`]s.
pub fn unregister() {
    // SAFETY: see register.
    unsafe {
        if let Some(t) = (*TECH.0.get()).as_ref() {
            sys::ast_channel_unregister(t);
        }
        *TECH.0.get() = None;
    }
    *REQUESTER.write().unwrap_or_else(|e| e.into_inner()) = None;
    *CAPS.write().unwrap_or_else(|e| e.into_inner()) = None;
}

fn tech_ptr() -> *const sys::ast_channel_tech {
    // SAFETY: read of the registered struct (see TechCell).
    unsafe { (*TECH.0.get()).as_ref().map_or(null(), |t| t as *const _) }
}

/// What a new channel is.
pub struct NewChannel<'a> {
    pub dest: &'a str,
    pub state: sys::ast_channel_state,
    pub context: &'a str,
    pub exten: &'a str,
    pub cid_num: &'a str,
    pub cid_name: &'a str,
    pub formats: &'a [Format],
}

/// Allocates a MOQ channel owned by `leg`, unlocked, with one reference
/// for the caller.
///
/// # Safety
/// `assigned` and `requestor` are NULL or valid for the call.
unsafe fn alloc(
    n: &NewChannel<'_>,
    leg: Arc<dyn Leg>,
    assigned: *const sys::ast_assigned_ids,
    requestor: *const sys::ast_channel,
) -> Option<NonNull<sys::ast_channel>> {
    let tech = tech_ptr();
    let caps = super::format::Caps::new(n.formats)?;
    let first = n.formats.iter().copied().find(|f| f.available())?;
    let name = cstring(&format!("MOQ/{}-{:08x}", n.dest, SEQ.fetch_add(1, Ordering::Relaxed)));
    let (num, nam, ext, ctx) = (cstring(n.cid_num), cstring(n.cid_name), cstring(n.exten), cstring(n.context));
    let opt = |c: &std::ffi::CString| if c.as_bytes().is_empty() { null() } else { c.as_ptr() };
    // SAFETY: every string lives across the call; "%s" takes one char*.
    let chan = unsafe {
        sys::__ast_channel_alloc(
            1,
            n.state as c_int,
            opt(&num),
            opt(&nam),
            null(),
            opt(&ext),
            opt(&ctx),
            assigned,
            requestor,
            sys::AST_AMA_NONE,
            null_mut(),
            c"tech.rs".as_ptr(),
            0,
            c"alloc".as_ptr(),
            c"%s".as_ptr(),
            name.as_ptr(),
        )
    };
    let chan = NonNull::new(chan)?;
    let c = chan.as_ptr();
    // SAFETY: the channel comes back locked and ours; set it up, then unlock.
    unsafe {
        sys::ast_channel_tech_set(c, tech);
        sys::ast_channel_nativeformats_set(c, caps.raw());
        sys::ast_channel_set_rawwriteformat(c, first.raw());
        sys::ast_channel_set_writeformat(c, first.raw());
        sys::ast_channel_set_rawreadformat(c, first.raw());
        sys::ast_channel_set_readformat(c, first.raw());
        let pvt: Box<Arc<dyn Leg>> = Box::new(leg);
        sys::ast_channel_tech_pvt_set(c, Box::into_raw(pvt).cast());
        sys::__ao2_unlock(c.cast(), c"tech.rs".as_ptr(), c"alloc".as_ptr(), 0, c"chan".as_ptr());
    }
    Some(chan)
}

/// Starts an incoming call's channel in the dialplan (`ast_pbx_start`).
/// Variables are set before the PBX runs.
pub fn start_inbound(n: &NewChannel<'_>, leg: Arc<dyn Leg>, vars: &[(&str, &str)]) -> Result<Channel, String> {
    if tech_ptr().is_null() {
        return Err("the MOQ technology is not registered".into());
    }
    // SAFETY: NULL ids and requestor are allowed.
    let chan = unsafe { alloc(n, leg, null(), null()) }.ok_or("cannot allocate a channel")?;
    // SAFETY: we own the allocation reference; Channel takes another for us.
    let handle = unsafe { Channel::from_borrowed(chan.as_ptr()) }.ok_or("null channel")?;
    for (k, v) in vars {
        handle.set_var(k, v);
    }
    // SAFETY: a fully set-up, unlocked channel. On success the PBX thread
    // owns the allocation reference; on failure we hang it up ourselves.
    unsafe {
        if sys::ast_pbx_start(chan.as_ptr()) != sys::AST_PBX_SUCCESS {
            sys::ast_hangup(chan.as_ptr());
            return Err("ast_pbx_start failed (too many calls?)".into());
        }
    }
    Ok(handle)
}

/// The channel's leg, borrowed for one callback.
///
/// # Safety
/// `chan` is live and locked by the core (true in every tech callback).
unsafe fn leg<'a>(chan: *mut sys::ast_channel) -> Option<&'a Arc<dyn Leg>> {
    // SAFETY: tech_pvt is NULL or our Box, freed only in hangup_cb.
    unsafe { (sys::ast_channel_tech_pvt(chan) as *const Arc<dyn Leg>).as_ref() }
}

/// Runs a callback body; a panic is logged and becomes `fallback`.
fn guard<T>(what: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(_) => {
            super::log(super::Level::Error, &format!("chan_moq: internal error in {what}; the call is torn down"));
            fallback
        }
    }
}

unsafe extern "C" fn requester_cb(
    _type: *const c_char,
    _cap: *mut sys::ast_format_cap,
    assigned: *const sys::ast_assigned_ids,
    requestor: *const sys::ast_channel,
    addr: *const c_char,
    cause: *mut c_int,
) -> *mut sys::ast_channel {
    guard("requester", null_mut(), || {
        // SAFETY: the core passes a valid string.
        let dest = unsafe { from_c(addr) }.unwrap_or_default();
        let Some(req) = REQUESTER.read().unwrap_or_else(|e| e.into_inner()).clone() else { return null_mut() };
        let leg = match req.request(&dest) {
            Ok(l) => l,
            Err(c) => {
                if !cause.is_null() {
                    // SAFETY: the core's out-parameter.
                    unsafe { *cause = c };
                }
                return null_mut();
            }
        };
        let formats = req.formats();
        let n =
            NewChannel { dest: &dest, state: sys::AST_STATE_DOWN, context: "", exten: "", cid_num: "", cid_name: "", formats: &formats };
        // SAFETY: pointers straight from the core.
        match unsafe { alloc(&n, leg.clone(), assigned, requestor) } {
            Some(c) => c.as_ptr(),
            None => {
                leg.hangup(0);
                null_mut()
            }
        }
    })
}

unsafe extern "C" fn call_cb(chan: *mut sys::ast_channel, addr: *const c_char, _timeout: c_int) -> c_int {
    guard("call", -1, || {
        // SAFETY: tech callback contract.
        let (Some(leg), Some(handle)) = (unsafe { leg(chan) }, unsafe { Channel::from_borrowed(chan) }) else { return -1 };
        // SAFETY: valid string from the core.
        let dest = unsafe { from_c(addr) }.unwrap_or_default();
        match leg.call(&handle, &dest) {
            Ok(()) => 0,
            Err(e) => {
                super::log(super::Level::Warning, &format!("MOQ/{dest}: {e}"));
                -1
            }
        }
    })
}

unsafe extern "C" fn hangup_cb(chan: *mut sys::ast_channel) -> c_int {
    guard("hangup", -1, || {
        // SAFETY: tech callback contract; we take the Box back exactly once.
        unsafe {
            let p = sys::ast_channel_tech_pvt(chan) as *mut Arc<dyn Leg>;
            sys::ast_channel_tech_pvt_set(chan, null_mut());
            if !p.is_null() {
                let leg = Box::from_raw(p);
                leg.hangup(sys::ast_channel_hangupcause(chan));
            }
        }
        0
    })
}

unsafe extern "C" fn answer_cb(chan: *mut sys::ast_channel) -> c_int {
    guard("answer", -1, || {
        // SAFETY: tech callback contract.
        if let Some(l) = unsafe { leg(chan) } {
            l.answer();
        }
        0
    })
}

/// Media reaches Asterisk by `ast_queue_frame`, so `read` has nothing.
unsafe extern "C" fn read_cb(_chan: *mut sys::ast_channel) -> *mut sys::ast_frame {
    &raw mut sys::ast_null_frame
}

unsafe extern "C" fn write_cb(chan: *mut sys::ast_channel, f: *mut sys::ast_frame) -> c_int {
    guard("write", 0, || {
        // SAFETY: the core passes a valid frame and a locked channel.
        unsafe {
            let Some(f) = f.as_ref() else { return 0 };
            if f.frametype != sys::AST_FRAME_VOICE || f.datalen <= 0 || f.data.ptr.is_null() {
                return 0;
            }
            let Some(format) = Format::from_raw(f.subclass.__bindgen_anon_1.format) else { return 0 };
            let data = std::slice::from_raw_parts(f.data.ptr as *const u8, f.datalen as usize);
            if let Some(l) = leg(chan) {
                l.write(format, data);
            }
        }
        0
    })
}

unsafe extern "C" fn indicate_cb(chan: *mut sys::ast_channel, cond: c_int, _data: *const c_void, _len: usize) -> c_int {
    guard("indicate", -1, || {
        let on = match cond as sys::ast_control_frame_type {
            sys::AST_CONTROL_HOLD => true,
            sys::AST_CONTROL_UNHOLD => false,
            // -1: let the core play tones in-band or ignore the indication.
            _ => return -1,
        };
        // SAFETY: tech callback contract.
        if let Some(l) = unsafe { leg(chan) } {
            l.hold(on);
        }
        0
    })
}

unsafe extern "C" fn digit_end_cb(chan: *mut sys::ast_channel, digit: c_char, duration: c_uint) -> c_int {
    guard("send_digit_end", -1, || {
        // SAFETY: tech callback contract.
        if let Some(l) = unsafe { leg(chan) } {
            l.digit(digit as u8 as char, duration);
        }
        0
    })
}

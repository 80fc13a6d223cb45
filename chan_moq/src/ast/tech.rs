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
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
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

/// The technology struct, in writable memory for the one per-load field
/// (`capabilities`). Like a C driver's `static struct ast_channel_tech`, it
/// lives as long as the library and its address never changes, so a
/// channel's `tech` pointer stays valid after `unregister`.
struct TechCell(UnsafeCell<sys::ast_channel_tech>);
// SAFETY: Rust never forms a reference to the struct; it writes the one field
// `capabilities` through the raw pointer only while the technology is not
// registered and no MOQ channel exists (see `register`/`unregister`), so those
// writes race with no reader. Otherwise the core reads it from any thread, and
// everything it points to is `'static` (strings, functions) or owned by `CAPS`.
unsafe impl Sync for TechCell {}

/// `struct ast_channel_tech` with our name and callbacks; no capabilities yet.
const fn template() -> sys::ast_channel_tech {
    // SAFETY: `ast_channel_tech` holds raw pointers, C ints and `Option`s of
    // `unsafe extern "C" fn`: all-zero bytes are a valid value of each (NULL,
    // 0, `None`), the C `{ 0 }` in which a NULL callback means "not supported".
    let mut t: sys::ast_channel_tech = unsafe { std::mem::zeroed() };
    t.type_ = c"MOQ".as_ptr();
    t.description = c"Media over QUIC phone calls (docs/CALLS.md)".as_ptr();
    t.requester = Some(requester_cb);
    t.call = Some(call_cb);
    t.hangup = Some(hangup_cb);
    t.answer = Some(answer_cb);
    t.read = Some(read_cb);
    t.write = Some(write_cb);
    t.indicate = Some(indicate_cb);
    t.send_digit_end = Some(digit_end_cb);
    t
}

static TECH: TechCell = TechCell(UnsafeCell::new(template()));
static REGISTERED: AtomicBool = AtomicBool::new(false);
static REQUESTER: RwLock<Option<Arc<dyn Requester>>> = RwLock::new(None);
static CAPS: RwLock<Option<super::format::Caps>> = RwLock::new(None);
static SEQ: AtomicU32 = AtomicU32::new(0);

/// Registers the `MOQ` technology. Call once from `load`.
pub fn register(requester: Arc<dyn Requester>) -> Result<(), String> {
    if REGISTERED.load(Ordering::Acquire) {
        return Err("the MOQ technology is already registered".into());
    }
    let caps = super::format::Caps::new(&[Format::Opus, Format::Slin48]).ok_or("cannot allocate format capabilities")?;
    let t = TECH.0.get();
    // SAFETY: `t` points to the static, valid for the life of the library. The
    // technology is not registered (checked above; load and unload, the only
    // callers of register/unregister, are serialised by the loader), and no
    // MOQ channel exists (none before the first load; unload refuses while any
    // leg is live), so no thread reads the struct while this field is written.
    // `caps` stays alive in `CAPS` for as long as the pointer is set.
    unsafe { (*t).capabilities = caps.raw() };
    *REQUESTER.write().unwrap_or_else(|e| e.into_inner()) = Some(requester);
    *CAPS.write().unwrap_or_else(|e| e.into_inner()) = Some(caps);
    // SAFETY: `t` is a fully initialised `ast_channel_tech` at a fixed address
    // valid for the life of the library, as the core requires: it keeps the
    // pointer (and hands it to every channel) until `ast_channel_unregister`.
    // The core publishes it under its own backends lock, which orders the write
    // above before any reader.
    if unsafe { sys::ast_channel_register(t) } != 0 {
        *REQUESTER.write().unwrap_or_else(|e| e.into_inner()) = None;
        *CAPS.write().unwrap_or_else(|e| e.into_inner()) = None;
        return Err("ast_channel_register failed (is another MOQ technology loaded?)".into());
    }
    REGISTERED.store(true, Ordering::Release);
    Ok(())
}

/// Unregisters the technology (from `unload`, which runs only when no MOQ leg
/// is live). The struct itself stays in place (see [`TechCell`]).
pub fn unregister() {
    if !REGISTERED.swap(false, Ordering::AcqRel) {
        return;
    }
    let t = TECH.0.get();
    // SAFETY: `t` is the struct `register` registered, still valid; the core
    // unlinks it under its backends lock and keeps no pointer to it for new
    // requests.
    unsafe { sys::ast_channel_unregister(t) };
    // SAFETY: as in `register`: the technology is no longer registered and no
    // MOQ channel exists, so nothing reads the field; clearing it before `CAPS`
    // drops the set leaves no dangling pointer, as C drivers do in unload.
    unsafe { (*t).capabilities = null_mut() };
    *REQUESTER.write().unwrap_or_else(|e| e.into_inner()) = None;
    *CAPS.write().unwrap_or_else(|e| e.into_inner()) = None;
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
/// `assigned` is NULL or points to an `ast_assigned_ids` valid for the call;
/// `requestor` is NULL or a live channel for the duration of the call (both as
/// the core passes them to the requester callback).
unsafe fn alloc(
    n: &NewChannel<'_>,
    leg: Arc<dyn Leg>,
    assigned: *const sys::ast_assigned_ids,
    requestor: *const sys::ast_channel,
) -> Option<NonNull<sys::ast_channel>> {
    let caps = super::format::Caps::new(n.formats)?;
    let first = n.formats.iter().copied().find(|f| f.available())?;
    let name = cstring(&format!("MOQ/{}-{:08x}", n.dest, SEQ.fetch_add(1, Ordering::Relaxed)));
    let (num, nam, ext, ctx) = (cstring(n.cid_num), cstring(n.cid_name), cstring(n.exten), cstring(n.context));
    let opt = |c: &std::ffi::CString| if c.as_bytes().is_empty() { null() } else { c.as_ptr() };
    // SAFETY: every string argument is NULL or a NUL-terminated `CString`/literal
    // that outlives the call (the core copies them into the channel); `assigned`
    // and `requestor` are NULL or valid (this function's contract); the varargs
    // are exactly the one `char *` ("%s", `name`) the format consumes. The
    // channel comes back with one reference, ours, and locked.
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
    let pvt = Box::into_raw(Box::new(leg));
    // SAFETY: `c` is live (we own its allocation reference) and still locked by
    // `__ast_channel_alloc`, so no other thread touches these fields until the
    // unlock at the end. `TECH` is a `'static` technology (see `TechCell`);
    // `caps` is a live set, and the channel takes its own reference to it, so
    // dropping ours at the end of this function is fine; the formats are core
    // formats alive for the core's lifetime (`available` checked non-NULL).
    // `tech_pvt` takes ownership of the boxed leg: `hangup_cb` takes it back
    // exactly once. The lock we release is the one the allocation returned.
    unsafe {
        sys::ast_channel_tech_set(c, TECH.0.get());
        sys::ast_channel_nativeformats_set(c, caps.raw());
        sys::ast_channel_set_rawwriteformat(c, first.raw());
        sys::ast_channel_set_writeformat(c, first.raw());
        sys::ast_channel_set_rawreadformat(c, first.raw());
        sys::ast_channel_set_readformat(c, first.raw());
        sys::ast_channel_tech_pvt_set(c, pvt.cast());
        sys::__ao2_unlock(c.cast(), c"tech.rs".as_ptr(), c"alloc".as_ptr(), 0, c"chan".as_ptr());
    }
    Some(chan)
}

/// Starts an incoming call's channel in the dialplan (`ast_pbx_start`).
/// Variables are set before the PBX runs.
pub fn start_inbound(n: &NewChannel<'_>, leg: Arc<dyn Leg>, vars: &[(&str, &str)]) -> Result<Channel, String> {
    if !REGISTERED.load(Ordering::Acquire) {
        return Err("the MOQ technology is not registered".into());
    }
    // SAFETY: NULL ids and requestor are what `alloc` allows (no ids to assign,
    // no requesting channel).
    let chan = unsafe { alloc(n, leg, null(), null()) }.ok_or("cannot allocate a channel")?;
    // SAFETY: we own the allocation reference, so the channel is live while
    // `Channel` takes a second one, for the handle we return.
    let handle = unsafe { Channel::from_borrowed(chan.as_ptr()) }.ok_or("null channel")?;
    for (k, v) in vars {
        handle.set_var(k, v);
    }
    // SAFETY: a fully set-up, unlocked channel, live through our allocation
    // reference, which both calls consume: on success the PBX thread owns it;
    // on failure `ast_hangup` releases it (and runs `hangup_cb`, freeing the
    // leg). `handle` keeps the object itself alive either way.
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
/// `chan` is a live MOQ channel locked by the core (true in every tech
/// callback but `requester`), and the returned reference is not kept past the
/// callback. `hangup_cb`, which frees the leg, cannot run meanwhile: other
/// threads need the lock the caller holds, and on this thread no [`Leg`]
/// method hangs a channel up synchronously (they queue hangups).
unsafe fn leg<'a>(chan: *mut sys::ast_channel) -> Option<&'a Arc<dyn Leg>> {
    // SAFETY: `chan` is live (contract); its `tech_pvt` is NULL or the
    // `Box<Arc<dyn Leg>>` that `alloc` leaked into it, which only `hangup_cb`
    // frees, under the channel lock the caller holds, so it outlives `'a`.
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

/// `ast_channel_tech.requester`: a new outgoing channel for `Dial(MOQ/addr)`.
///
/// # Safety
/// Called by the core only: `addr` is NULL or a NUL-terminated string,
/// `assigned` and `requestor` are NULL or valid for the call, and `cause` is
/// NULL or writable.
unsafe extern "C" fn requester_cb(
    _type: *const c_char,
    _cap: *mut sys::ast_format_cap,
    assigned: *const sys::ast_assigned_ids,
    requestor: *const sys::ast_channel,
    addr: *const c_char,
    cause: *mut c_int,
) -> *mut sys::ast_channel {
    guard("requester", null_mut(), || {
        // SAFETY: `addr` is NULL or a NUL-terminated string the core keeps alive
        // for this call (contract); `from_c` copies it.
        let dest = unsafe { from_c(addr) }.unwrap_or_default();
        let Some(req) = REQUESTER.read().unwrap_or_else(|e| e.into_inner()).clone() else { return null_mut() };
        let leg = match req.request(&dest) {
            Ok(l) => l,
            Err(c) => {
                if !cause.is_null() {
                    // SAFETY: `cause` is non-NULL, and the core passes a pointer to
                    // an `int` it owns for the call (contract).
                    unsafe { *cause = c };
                }
                return null_mut();
            }
        };
        let formats = req.formats();
        let n =
            NewChannel { dest: &dest, state: sys::AST_STATE_DOWN, context: "", exten: "", cid_num: "", cid_name: "", formats: &formats };
        // SAFETY: `assigned` and `requestor` come straight from the core, NULL or
        // valid for this call, which is what `alloc` requires.
        match unsafe { alloc(&n, leg.clone(), assigned, requestor) } {
            Some(c) => c.as_ptr(),
            None => {
                leg.hangup(0);
                null_mut()
            }
        }
    })
}

/// `ast_channel_tech.call`: `Dial()` places the call.
///
/// # Safety
/// Called by the core only, with `chan` a live MOQ channel it has locked and
/// `addr` NULL or a NUL-terminated string valid for the call.
unsafe extern "C" fn call_cb(chan: *mut sys::ast_channel, addr: *const c_char, _timeout: c_int) -> c_int {
    guard("call", -1, || {
        // SAFETY: `chan` is a live, locked MOQ channel (contract), as `leg` needs,
        // and the leg is used only within this callback.
        let Some(leg) = (unsafe { leg(chan) }) else { return -1 };
        // SAFETY: `chan` is live for the call (contract), as `from_borrowed` needs.
        let Some(handle) = (unsafe { Channel::from_borrowed(chan) }) else { return -1 };
        // SAFETY: `addr` is NULL or a NUL-terminated string valid for the call.
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

/// `ast_channel_tech.hangup`: the channel is going away; free its leg.
///
/// # Safety
/// Called by the core only, with `chan` a live MOQ channel it has locked; no
/// other callback of ours runs for the channel after this one.
unsafe extern "C" fn hangup_cb(chan: *mut sys::ast_channel) -> c_int {
    guard("hangup", -1, || {
        // SAFETY: `chan` is live and locked (contract). `tech_pvt` is NULL or the
        // box `alloc` leaked; we clear it before taking the box back, so it is
        // freed exactly once even if the core called hangup twice, and no other
        // callback can borrow it (they need the lock we are under, and none runs
        // after hangup).
        let p = unsafe {
            let p = sys::ast_channel_tech_pvt(chan) as *mut Arc<dyn Leg>;
            sys::ast_channel_tech_pvt_set(chan, null_mut());
            p
        };
        if !p.is_null() {
            // SAFETY: `p` came from `Box::into_raw` in `alloc` and, just detached
            // from the channel, is owned by nobody else.
            let leg = unsafe { Box::from_raw(p) };
            // SAFETY: `chan` is live and locked (contract); a plain field read.
            let cause = unsafe { sys::ast_channel_hangupcause(chan) };
            leg.hangup(cause);
        }
        0
    })
}

/// `ast_channel_tech.answer`: the dialplan answered an incoming call.
///
/// # Safety
/// Called by the core only, with `chan` a live MOQ channel it has locked.
unsafe extern "C" fn answer_cb(chan: *mut sys::ast_channel) -> c_int {
    guard("answer", -1, || {
        // SAFETY: `chan` is live and locked (contract); the leg is used only here.
        if let Some(l) = unsafe { leg(chan) } {
            l.answer();
        }
        0
    })
}

/// `ast_channel_tech.read`. Media reaches Asterisk by `ast_queue_frame`, so
/// `read` has nothing: the core's static null frame, which it never frees.
extern "C" fn read_cb(_chan: *mut sys::ast_channel) -> *mut sys::ast_frame {
    &raw mut sys::ast_null_frame
}

/// `ast_channel_tech.write`: audio from the core towards the MoQ peer.
///
/// # Safety
/// Called by the core only, with `chan` a live MOQ channel it has locked and
/// `f` NULL or a frame valid (with its data) for the call.
unsafe extern "C" fn write_cb(chan: *mut sys::ast_channel, f: *mut sys::ast_frame) -> c_int {
    guard("write", 0, || {
        // SAFETY: `f` is NULL or a valid frame the core does not modify during
        // the call (contract), so a shared borrow for the call is sound.
        let Some(f) = (unsafe { f.as_ref() }) else { return 0 };
        if f.frametype != sys::AST_FRAME_VOICE || f.datalen <= 0 {
            return 0;
        }
        // SAFETY: for an `AST_FRAME_VOICE` frame the subclass union holds the
        // `format` pointer (the C `f->subclass.format`), which is NULL or a live
        // format the frame holds a reference to, as `from_raw` requires.
        let Some(format) = (unsafe { Format::from_raw(f.subclass.__bindgen_anon_1.format) }) else { return 0 };
        // SAFETY: reading the `ptr` member of the data union, a raw pointer that
        // every frame type uses (possibly NULL, checked below).
        let data = unsafe { f.data.ptr } as *const u8;
        if data.is_null() {
            return 0;
        }
        // SAFETY: a voice frame's `data.ptr` points to `datalen` initialised bytes
        // (positive, checked above; an `i32`, so well below `isize::MAX`) that the
        // frame owns and nobody writes during the call; `u8` needs no alignment;
        // the borrow ends with this callback (`Leg::write` takes a `&[u8]`).
        let data = unsafe { std::slice::from_raw_parts(data, f.datalen as usize) };
        // SAFETY: `chan` is live and locked (contract); the leg is used only here.
        if let Some(l) = unsafe { leg(chan) } {
            l.write(format, data);
        }
        0
    })
}

/// `ast_channel_tech.indicate`: hold and unhold; other indications are left
/// to the core.
///
/// # Safety
/// Called by the core only, with `chan` a live MOQ channel it has locked.
unsafe extern "C" fn indicate_cb(chan: *mut sys::ast_channel, cond: c_int, _data: *const c_void, _len: usize) -> c_int {
    guard("indicate", -1, || {
        let on = match cond as sys::ast_control_frame_type {
            sys::AST_CONTROL_HOLD => true,
            sys::AST_CONTROL_UNHOLD => false,
            // -1: let the core play tones in-band or ignore the indication.
            _ => return -1,
        };
        // SAFETY: `chan` is live and locked (contract); the leg is used only here.
        if let Some(l) = unsafe { leg(chan) } {
            l.hold(on);
        }
        0
    })
}

/// `ast_channel_tech.send_digit_end`: a DTMF digit towards the MoQ peer.
///
/// # Safety
/// Called by the core only, with `chan` a live MOQ channel it has locked.
unsafe extern "C" fn digit_end_cb(chan: *mut sys::ast_channel, digit: c_char, duration: c_uint) -> c_int {
    guard("send_digit_end", -1, || {
        // SAFETY: `chan` is live and locked (contract); the leg is used only here.
        if let Some(l) = unsafe { leg(chan) } {
            l.digit(digit as u8 as char, duration);
        }
        0
    })
}

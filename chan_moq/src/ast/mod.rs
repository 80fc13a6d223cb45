//! The safe layer over Asterisk's C API: with `sys`, the only place allowed
//! `unsafe` (lib.rs). The driver (`crate::driver`) and the module definition in
//! lib.rs are written against these types alone, like `redis-module` or `pgrx`
//! wrap their hosts.
//!
//! Rules every wrapper here keeps:
//! - a [`Channel`] is a counted ao2 reference, so it may outlive the
//!   callback it came from and cross threads (Asterisk channels lock
//!   themselves in every call used here);
//! - callbacks from Asterisk run inside `catch_unwind`: a Rust panic becomes
//!   an error return, never an unwind into C (which would abort the PBX);
//! - strings cross as `CString` built here, with NULs replaced;
//! - every `unsafe` block says, in its `// SAFETY:` comment, which pointer is
//!   valid for how long and why no other thread races with it.

pub mod channel;
pub mod cli;
pub mod format;
pub mod module;
pub mod tech;

pub use channel::{Channel, Control};
pub use format::Format;

use crate::sys;
use core::ffi::{c_char, c_int, CStr};
use std::ffi::CString;

/// A C string from Rust text; interior NULs (never valid in Asterisk names)
/// are replaced rather than truncating silently.
pub(crate) fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

/// Reads a C string Asterisk owns; `None` for NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid and
/// unmodified for the duration of the call (it is copied before returning).
pub(crate) unsafe fn from_c(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: `p` is non-NULL here, and the caller guarantees it points to a
    // NUL-terminated string alive for this call; the borrow ends when the
    // string is copied into the returned `String`.
    Some(unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Log levels of `ast_log`.
#[derive(Debug, Clone, Copy)]
pub enum Level {
    Debug,
    Notice,
    Warning,
    Error,
}

/// `ast_log(level, ...)` with the caller's file and line. NUL bytes in `msg`
/// are replaced. Only call this inside Asterisk.
#[track_caller]
pub fn log(level: Level, msg: &str) {
    let level = match level {
        Level::Debug => sys::__LOG_DEBUG,
        Level::Notice => sys::__LOG_NOTICE,
        Level::Warning => sys::__LOG_WARNING,
        Level::Error => sys::__LOG_ERROR,
    };
    let loc = core::panic::Location::caller();
    let file = cstring(loc.file());
    let msg = cstring(msg);
    let line = c_int::try_from(loc.line()).unwrap_or(c_int::MAX);
    // SAFETY: `file`, `msg` and the literals are NUL-terminated and outlive the
    // call (ast_log formats synchronously and keeps no pointer); the format
    // "%s\n" consumes exactly one vararg, a `char *`, which `msg.as_ptr()` is.
    // ast_log is thread-safe (the logger queues the formatted line).
    unsafe {
        sys::ast_log(level as c_int, file.as_ptr(), line, c"chan_moq".as_ptr(), c"%s\n".as_ptr(), msg.as_ptr());
    }
}

/// The module's use count, one per live channel: while it is above zero a
/// plain `module unload` is refused instead of unmapping code in use.
pub struct ModuleRef(());

impl ModuleRef {
    pub fn take() -> Self {
        // SAFETY: `module_self()` is the handle Asterisk set at registration; it
        // stays valid until `ast_module_unregister` at `dlclose`, which comes only
        // after `unload` has stopped every thread of ours that could call this.
        // The file and function names are static C strings; the core updates the
        // count atomically, so any thread may call this.
        unsafe { sys::__ast_module_ref(module::module_self(), c"chan_moq".as_ptr(), 0, c"ModuleRef".as_ptr()) };
        ModuleRef(())
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: balances the ref taken in `take`; the handle is valid because
        // that ref, still held until this call, keeps the module from being
        // unloaded and unregistered.
        unsafe { sys::__ast_module_unref(module::module_self(), c"chan_moq".as_ptr(), 0, c"ModuleRef".as_ptr()) };
    }
}

/// Whether Asterisk is fully booted (`ast_fully_booted`): before, the core
/// loads modules but `ast_pbx_start` refuses every channel ("PBX requires
/// Asterisk to be fully booted"), so an incoming call could only be declined.
pub fn fully_booted() -> bool {
    // SAFETY: `ast_options` is a plain `u64` flag word the core owns for its
    // lifetime; the core sets FULLY_BOOTED once at the end of boot. A racing
    // read sees the bit set or not, never anything else: a volatile load of
    // an aligned u64, as the C macro's plain load is.
    let flags = unsafe { core::ptr::read_volatile(&raw const sys::ast_options.flags) };
    flags & sys::AST_OPT_FLAG_FULLY_BOOTED != 0
}

/// The configuration directory (`astetcdir`), e.g. `/etc/asterisk`.
pub fn config_dir() -> std::path::PathBuf {
    // SAFETY: `ast_config_AST_CONFIG_DIR` is a `const char *` global the core
    // sets while reading asterisk.conf, before it loads any module, and never
    // changes afterwards; it is NULL or a NUL-terminated string owned by the
    // core for its lifetime. Reading the global itself is a plain load of a
    // value no thread writes any more.
    let dir = unsafe { from_c(sys::ast_config_AST_CONFIG_DIR) };
    std::path::PathBuf::from(dir.unwrap_or_else(|| "/etc/asterisk".into()))
}

//! The safe layer over Asterisk's C API: the only place besides `sys` and
//! `module` with `unsafe`. The driver (`crate::driver`) is written against
//! these types alone, like `redis-module` or `pgrx` wrap their hosts.
//!
//! Rules every wrapper here keeps:
//! - a [`Channel`] is a counted ao2 reference, so it may outlive the
//!   callback it came from and cross threads (Asterisk channels lock
//!   themselves in every call used here);
//! - callbacks from Asterisk run inside `catch_unwind`: a Rust panic becomes
//!   an error return, never an unwind into C (which would abort the PBX);
//! - strings cross as `CString` built here, with NULs replaced.

pub mod channel;
pub mod cli;
pub mod format;
pub mod tech;

pub use channel::{Channel, Control};
pub use format::Format;

use std::ffi::CString;

/// A C string from Rust text; interior NULs (never valid in Asterisk names)
/// are replaced rather than truncating silently.
pub(crate) fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "?")).unwrap_or_default()
}

/// Reads a C string Asterisk owns; `None` for NULL.
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
pub(crate) unsafe fn from_c(p: *const core::ffi::c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: guaranteed by the caller.
    Some(unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned())
}

/// Log levels of `ast_log`.
#[derive(Debug, Clone, Copy)]
pub enum Level {
    Debug,
    Notice,
    Warning,
    Error,
}

/// `ast_log` with this crate's file and line.
#[track_caller]
pub fn log(level: Level, msg: &str) {
    let l = match level {
        Level::Debug => crate::sys::__LOG_DEBUG,
        Level::Notice => crate::sys::__LOG_NOTICE,
        Level::Warning => crate::sys::__LOG_WARNING,
        Level::Error => crate::sys::__LOG_ERROR,
    };
    crate::module::log(l as core::ffi::c_int, msg);
}

/// The module's use count, one per live channel: while it is above zero a
/// plain `module unload` is refused instead of unmapping code in use.
pub struct ModuleRef(());

impl ModuleRef {
    pub fn take() -> Self {
        // SAFETY: module_self() is this module's handle, set at registration.
        unsafe { crate::sys::__ast_module_ref(crate::module_self(), c"chan_moq".as_ptr(), 0, c"ModuleRef".as_ptr()) };
        ModuleRef(())
    }
}

impl Drop for ModuleRef {
    fn drop(&mut self) {
        // SAFETY: balances the ref taken in `take`.
        unsafe { crate::sys::__ast_module_unref(crate::module_self(), c"chan_moq".as_ptr(), 0, c"ModuleRef".as_ptr()) };
    }
}

/// The configuration directory (`astetcdir`), e.g. `/etc/asterisk`.
pub fn config_dir() -> std::path::PathBuf {
    // SAFETY: a global string the core sets before loading modules.
    let dir = unsafe { from_c(crate::sys::ast_config_AST_CONFIG_DIR) };
    std::path::PathBuf::from(dir.unwrap_or_else(|| "/etc/asterisk".into()))
}

//! The Rust equivalent of C's `AST_MODULE_INFO(...)`: a writable `ast_module_info`,
//! registered with the loader from an ELF constructor and unregistered from an ELF
//! destructor.
//!
//! How Asterisk's loader uses it (Asterisk 22 `main/loader.c`):
//! 1. `dlopen(RTLD_NOW | RTLD_LOCAL)`: every `ast_*` symbol we reference must exist in
//!    the running asterisk binary, or `module load` fails with "undefined symbol".
//! 2. The constructor below must call `ast_module_register(&info)`, which *writes*
//!    `info.self_`: the struct must be in writable memory (an `UnsafeCell`; a plain
//!    `static` lands in RELRO and Asterisk segfaults).
//! 3. The loader checks `description`, the MD5 of `key` and `buildopt_sum`, then calls
//!    `load`. `module unload` calls `unload`, then `dlclose`, which runs the destructor.

use core::cell::UnsafeCell;
use core::ffi::{c_char, c_int};
use core::ptr::{null, null_mut};
use std::ffi::CString;

use crate::sys;

#[repr(transparent)]
struct ModInfo(UnsafeCell<sys::ast_module_info>);

// SAFETY: Asterisk writes `self_` once, in `ast_module_register` (our ELF
// constructor, before any other code of the module runs) and reads the struct
// from its own threads afterwards; Rust code only reads it.
unsafe impl Sync for ModInfo {}

static MOD_INFO: ModInfo = ModInfo(UnsafeCell::new(sys::ast_module_info {
    self_: null_mut(),
    load: Some(load_module),
    reload: Some(reload_module),
    unload: Some(unload_module),
    name: c"chan_moq".as_ptr(),
    description: c"MoQ (Media over QUIC) channel driver".as_ptr(),
    key: sys::ASTERISK_GPL_KEY.as_ptr(),
    flags: sys::AST_MODFLAG_LOAD_ORDER as _,
    buildopt_sum: sys::BUILDOPT_SUM,
    load_pri: sys::AST_MODPRI_CHANNEL_DRIVER as _,
    requires: null(),
    optional_modules: null(),
    enhances: null(),
    reserved1: null_mut(),
    reserved2: null_mut(),
    reserved3: null_mut(),
    reserved4: null_mut(),
    support_level: sys::AST_MODULE_SUPPORT_EXTENDED,
}));

extern "C" fn load_module() -> sys::ast_module_load_result {
    match std::panic::catch_unwind(crate::load) {
        Ok(Ok(())) => {
            log(sys::__LOG_NOTICE as c_int, "chan_moq loaded");
            sys::AST_MODULE_LOAD_SUCCESS
        }
        Ok(Err(e)) => {
            log(sys::__LOG_ERROR as c_int, &format!("chan_moq not loaded: {e}"));
            sys::AST_MODULE_LOAD_DECLINE
        }
        Err(_) => sys::AST_MODULE_LOAD_FAILURE,
    }
}

extern "C" fn unload_module() -> c_int {
    match std::panic::catch_unwind(crate::unload) {
        Ok(Ok(())) => {
            log(sys::__LOG_NOTICE as c_int, "chan_moq unloaded");
            0
        }
        Ok(Err(e)) => {
            log(sys::__LOG_WARNING as c_int, &format!("chan_moq stays loaded: {e}"));
            -1
        }
        Err(_) => -1,
    }
}

extern "C" fn reload_module() -> c_int {
    match std::panic::catch_unwind(crate::reload) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            log(sys::__LOG_ERROR as c_int, &format!("moq.conf not applied: {e}"));
            1
        }
        Err(_) => 1,
    }
}

#[cfg_attr(test, allow(dead_code))]
extern "C" fn register_module() {
    // SAFETY: MOD_INFO is a static in writable memory; Asterisk keeps the pointer
    // until unregister_module, which runs before the .so is unmapped.
    unsafe { sys::ast_module_register(MOD_INFO.0.get()) }
}

#[cfg_attr(test, allow(dead_code))]
extern "C" fn unregister_module() {
    // SAFETY: as above; called once from the ELF destructor at dlclose.
    unsafe { sys::ast_module_unregister(MOD_INFO.0.get()) }
}

// ELF constructor/destructor, what `__attribute__((constructor))` emits in C. Not in
// unit-test binaries: they run without Asterisk, and the ast_* symbols don't exist there.
#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".init_array")]
static INIT: extern "C" fn() = register_module;
#[cfg(not(test))]
#[used]
#[unsafe(link_section = ".fini_array")]
static FINI: extern "C" fn() = unregister_module;

/// `AST_MODULE_SELF`: this module's handle, set by Asterisk during registration. Pass
/// it to `__ast_module_ref`/`__ast_module_unref` (one ref per live channel, so
/// `module unload` can't unmap code in use), `__ast_cli_register`, etc.
pub fn module_self() -> *mut sys::ast_module {
    // SAFETY: plain read of a pointer-sized field that Asterisk wrote during
    // registration, before any caller can run.
    unsafe { (*MOD_INFO.0.get()).self_ }
}

/// `ast_log(level, ...)` with the caller's file and line. `level` is one of
/// `sys::__LOG_{DEBUG,NOTICE,WARNING,ERROR,VERBOSE}` (as `c_int`). NUL bytes in
/// `msg` are replaced. Only call this inside Asterisk.
#[track_caller]
pub fn log(level: c_int, msg: &str) {
    let loc = core::panic::Location::caller();
    let file = CString::new(loc.file()).unwrap_or_default();
    let msg = CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
    let line = c_int::try_from(loc.line()).unwrap_or(c_int::MAX);
    // SAFETY: all strings are NUL-terminated and outlive the call; "%s\n" consumes
    // exactly one `char *` vararg.
    unsafe {
        sys::ast_log(level, file.as_ptr(), line, c"chan_moq".as_ptr(), c"%s\n".as_ptr(), msg.as_ptr() as *const c_char);
    }
}

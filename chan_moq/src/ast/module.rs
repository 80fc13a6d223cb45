//! The Rust equivalent of C's `AST_MODULE_INFO(...)`: a writable `ast_module_info`,
//! registered with the loader from an ELF constructor and unregistered from an ELF
//! destructor, with `extern "C"` trampolines into safe Rust functions.
//!
//! The crate root says *what* the module is — [`crate::MODULE`], a [`Module`] of
//! plain `fn`s — and this file does everything that needs `unsafe`. In C the macro
//! expands in the module's own file and names its `load_module`/`unload_module`;
//! `redis_module!`, `pg_module_magic!` and `ngx_modules!` likewise expand their
//! exported symbols in the crate that uses them. Here a macro would put `unsafe`
//! (and the `link_section` statics) into lib.rs, outside the FFI layer, so instead
//! this module names the one item the crate root must provide, `crate::MODULE`.
//!
//! How Asterisk's loader uses it (Asterisk 22 `main/loader.c`):
//! 1. `dlopen(RTLD_NOW | RTLD_LOCAL)`: every `ast_*` symbol we reference must exist in
//!    the running asterisk binary, or `module load` fails with "undefined symbol".
//! 2. The constructor below must call `ast_module_register(&info)`, which *writes*
//!    `info.self_`: the struct must be in writable memory (an `UnsafeCell`; a plain
//!    `static` lands in RELRO and Asterisk segfaults).
//! 3. The loader checks `description`, the MD5 of `key` and `buildopt_sum`, then calls
//!    `load`. `module unload` calls `unload`, then `dlclose`, which runs the destructor.

use crate::sys;
use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::ptr::{null, null_mut};
use std::panic::catch_unwind;

use super::Level;

/// What a module is: the fields of `AST_MODULE_INFO(key, flags, desc, load, unload,
/// reload, ...)` that differ between modules. The hooks are safe Rust: a panic in
/// one is caught here and reported to the loader as a failure.
pub struct Module {
    /// The module's name, its file name without `.so` (`chan_moq`).
    pub name: &'static CStr,
    /// The one-line description `module show` lists.
    pub description: &'static CStr,
    /// `load_module`: an `Err` declines the load and is logged.
    pub load: fn() -> Result<(), String>,
    /// `unload_module`: an `Err` keeps the module loaded and is logged.
    pub unload: fn() -> Result<(), String>,
    /// `reload_module` (`module reload`): an `Err` is logged.
    pub reload: fn() -> Result<(), String>,
}

/// The `ast_module_info` the loader registers. `repr(transparent)` over an
/// `UnsafeCell`, so the static lands in `.data`, where Asterisk can write `self_`.
#[repr(transparent)]
struct Info(UnsafeCell<sys::ast_module_info>);

// SAFETY: the only write to the struct is Asterisk's store of `self_` inside
// `ast_module_register`, which runs in our ELF constructor on the thread calling
// `dlopen`, before `dlopen` returns; the loader calls `load` only after that, and all
// later Rust reads (`module_self`) come from `load` or from threads it started, so
// the write happens-before every read. `ast_module_unregister` only reads it. The
// raw pointers inside point to `'static` C strings and functions of this library.
unsafe impl Sync for Info {}

static INFO: Info = Info(UnsafeCell::new(sys::ast_module_info {
    self_: null_mut(),
    load: Some(load_module),
    reload: Some(reload_module),
    unload: Some(unload_module),
    name: crate::MODULE.name.as_ptr(),
    description: crate::MODULE.description.as_ptr(),
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

fn name() -> String {
    crate::MODULE.name.to_string_lossy().into_owned()
}

extern "C" fn load_module() -> sys::ast_module_load_result {
    match catch_unwind(crate::MODULE.load) {
        Ok(Ok(())) => {
            super::log(Level::Notice, &format!("{} loaded", name()));
            sys::AST_MODULE_LOAD_SUCCESS
        }
        Ok(Err(e)) => {
            super::log(Level::Error, &format!("{} not loaded: {e}", name()));
            sys::AST_MODULE_LOAD_DECLINE
        }
        Err(_) => sys::AST_MODULE_LOAD_FAILURE,
    }
}

extern "C" fn unload_module() -> core::ffi::c_int {
    match catch_unwind(crate::MODULE.unload) {
        Ok(Ok(())) => {
            super::log(Level::Notice, &format!("{} unloaded", name()));
            0
        }
        Ok(Err(e)) => {
            super::log(Level::Warning, &format!("{} stays loaded: {e}", name()));
            -1
        }
        Err(_) => -1,
    }
}

extern "C" fn reload_module() -> core::ffi::c_int {
    match catch_unwind(crate::MODULE.reload) {
        Ok(Ok(())) => 0,
        Ok(Err(e)) => {
            super::log(Level::Error, &format!("{}: {e}", name()));
            1
        }
        Err(_) => 1,
    }
}

#[cfg_attr(test, allow(dead_code))]
extern "C" fn register_module() {
    // SAFETY: `INFO` is a `'static` in writable memory (see `Info`), fully initialised
    // at compile time, so the pointer is valid for as long as the library is mapped;
    // the loader keeps it until `ast_module_unregister`, which our destructor calls
    // before the library is unmapped. This runs once, from the ELF constructor on the
    // thread inside `dlopen`, while no other code of this library runs, so Asterisk's
    // write of `self_` races with nothing.
    unsafe { sys::ast_module_register(INFO.0.get()) }
}

#[cfg_attr(test, allow(dead_code))]
extern "C" fn unregister_module() {
    // SAFETY: the same `'static` pointer that `register_module` registered; called once,
    // from the ELF destructor while `dlclose` unmaps the library, after `unload`
    // returned, so no callback of ours is running. Asterisk only looks it up and drops
    // its own bookkeeping; it does not write the struct.
    unsafe { sys::ast_module_unregister(INFO.0.get()) }
}

// ELF constructor/destructor, what `__attribute__((constructor))`/`((destructor))` emit
// in C. Sound because each entry is an `extern "C" fn()` (a panic in one aborts
// instead of unwinding into the dynamic loader) that ignores the (argc, argv, envp)
// glibc passes to `.init_array` entries, exactly like a C `void f(void)` constructor
// under the caller-cleans-up C calling convention. Not in unit-test
// binaries: they run without Asterisk, and the ast_* symbols don't exist there.
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
pub(crate) fn module_self() -> *mut sys::ast_module {
    // SAFETY: a plain copy of a pointer-sized field of a `'static`. Its one write (in
    // `ast_module_register`, see `Info`) happened before `load`, which is where every
    // caller's code path starts, so this read cannot race with it.
    unsafe { (*INFO.0.get()).self_ }
}

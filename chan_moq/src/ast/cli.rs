//! CLI commands (`cli.h`). Each command is a static `ast_cli_entry` whose
//! handler fills in its command words on `CLI_INIT` and, when run, prints
//! what a Rust function returns.

use crate::sys;
use core::ffi::{c_char, c_int};
use std::cell::UnsafeCell;
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// One command: its words (`moq show status`), a one-line summary, usage
/// text, and what it prints.
pub struct Command {
    pub words: &'static CStr,
    pub summary: &'static CStr,
    pub usage: &'static CStr,
    pub run: fn() -> String,
}

struct Entries(UnsafeCell<Vec<sys::ast_cli_entry>>, UnsafeCell<&'static [Command]>);
// SAFETY: written in register/unregister only (module load/unload, serialised
// by the loader); the core reads the entries between them.
unsafe impl Sync for Entries {}

static ENTRIES: Entries = Entries(UnsafeCell::new(Vec::new()), UnsafeCell::new(&[]));

/// Registers `commands` (call once, from load).
pub fn register(commands: &'static [Command]) {
    // SAFETY: see Entries; the Vec is never resized while registered, so the
    // entry addresses the core keeps stay valid.
    unsafe {
        *ENTRIES.1.get() = commands;
        let v = &mut *ENTRIES.0.get();
        v.clear();
        for c in commands {
            let mut e: sys::ast_cli_entry = std::mem::zeroed();
            e.handler = Some(handler);
            e.summary = c.summary.as_ptr();
            v.push(e);
        }
        for e in v.iter_mut() {
            sys::__ast_cli_register(e, crate::module_self());
        }
    }
}

pub fn unregister() {
    // SAFETY: see register.
    unsafe {
        let v = &mut *ENTRIES.0.get();
        for e in v.iter_mut() {
            sys::ast_cli_unregister(e);
        }
        v.clear();
    }
}

unsafe extern "C" fn handler(e: *mut sys::ast_cli_entry, cmd: c_int, a: *mut sys::ast_cli_args) -> *mut c_char {
    // SAFETY: the entry is one of ours (see register).
    let (entries, commands) = unsafe { (&*ENTRIES.0.get(), *ENTRIES.1.get()) };
    let Some(i) = entries.iter().position(|x| std::ptr::eq(x, e)) else { return sys::CLI_FAILURE };
    let c = &commands[i];
    match cmd {
        sys::CLI_INIT => {
            // SAFETY: the core asks us to fill in our own entry.
            unsafe {
                (*e).command = c.words.as_ptr() as *mut c_char;
                (*e).usage = c.usage.as_ptr();
            }
            std::ptr::null_mut()
        }
        sys::CLI_GENERATE => std::ptr::null_mut(),
        _ => {
            let text = catch_unwind(AssertUnwindSafe(c.run)).unwrap_or_else(|_| "chan_moq: internal error\n".into());
            let text = super::cstring(&text);
            // SAFETY: a valid fd from the core; "%s" takes one char*.
            unsafe { sys::ast_cli((*a).fd, c"%s".as_ptr(), text.as_ptr()) };
            sys::CLI_SUCCESS
        }
    }
}

//! CLI commands (`cli.h`). Each command is an `ast_cli_entry` whose handler
//! fills in its command words on `CLI_INIT` and, when run, prints what a Rust
//! function returns.
//!
//! The entries live as long as the library, like a C module's `static struct
//! ast_cli_entry` array: they are allocated on the first `register` and never
//! freed, because the core may still hold a pointer to one after
//! `ast_cli_unregister` (which leaves an entry in use registered, and returns 0
//! all the same). A later `register` (module load after unload) registers the
//! same entries again.

use crate::sys;
use core::ffi::{c_char, c_int};
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;

/// One command: its words (`moq show status`), a one-line summary, usage
/// text, and what it prints.
pub struct Command {
    pub words: &'static CStr,
    pub summary: &'static CStr,
    pub usage: &'static CStr,
    pub run: fn() -> String,
}

/// The entries of `commands`, one each, in a leaked allocation. We never form a
/// Rust reference to an entry once it is built (the core writes `inuse`,
/// `_full_cmd`, `cmda`… from its own threads): the pointer goes to the core
/// and is otherwise only compared.
struct Table {
    entries: *mut sys::ast_cli_entry,
    commands: &'static [Command],
}

// SAFETY: `entries` points to a leaked, never-freed allocation, so it is valid
// on every thread for the rest of the process; Rust never reads or writes the
// entries through it except in `register`/`handler`, in the contexts explained
// there. `commands` is shared immutable data.
unsafe impl Send for Table {}
// SAFETY: as for `Send`: `&Table` only yields the pointer and `commands`.
unsafe impl Sync for Table {}

impl Table {
    fn new(commands: &'static [Command]) -> Table {
        let entries: Box<[sys::ast_cli_entry]> = commands
            .iter()
            .map(|c| {
                // SAFETY: `ast_cli_entry` holds raw pointers, C ints, an
                // `Option<unsafe extern "C" fn>` and a list link (a raw pointer):
                // all-zero bytes are a valid value of each (NULL, 0, `None`), the
                // `{ 0 }` a C module starts from.
                let mut e: sys::ast_cli_entry = unsafe { std::mem::zeroed() };
                e.handler = Some(handler);
                e.summary = c.summary.as_ptr();
                e
            })
            .collect();
        Table { entries: Box::into_raw(entries).cast(), commands }
    }

    /// The command whose entry `e` is, if `e` is one of ours.
    fn command_of(&self, e: *const sys::ast_cli_entry) -> Option<&'static Command> {
        let i = (0..self.commands.len()).find(|&i| std::ptr::eq(self.entries.wrapping_add(i), e))?;
        Some(&self.commands[i])
    }
}

static TABLE: OnceLock<Table> = OnceLock::new();

/// Registers `commands` (from load). The first call fixes the module's
/// commands for the life of the library; later calls must pass the same
/// slice (they re-register the same entries).
pub fn register(commands: &'static [Command]) {
    let table = TABLE.get_or_init(|| Table::new(commands));
    if !std::ptr::eq(table.commands, commands) {
        super::log(super::Level::Error, "chan_moq: CLI commands differ from the first registration; not registered");
        return;
    }
    for i in 0..commands.len() {
        // SAFETY: `entries.wrapping_add(i)` is in bounds of the leaked allocation
        // (`i < len`), so the pointer is valid for the rest of the process, as the
        // core requires of a registered entry; `module_self()` is our handle, set
        // at registration. The core calls `handler` with `CLI_INIT` from inside
        // this call (under its helpers lock) to fill in `command`/`usage`, and
        // keeps the entry until `ast_cli_unregister`. An entry still registered
        // (an unregister refused while in use) is accepted again as a no-op.
        unsafe { sys::__ast_cli_register(table.entries.wrapping_add(i), super::module::module_self()) };
    }
}

/// Unregisters the commands (from unload). The entries stay allocated: see the
/// module documentation.
pub fn unregister() {
    let Some(table) = TABLE.get() else { return };
    for i in 0..table.commands.len() {
        // SAFETY: one of the entries `register` handed to the core, valid for the
        // rest of the process; the core takes its helpers lock to unlink it (or
        // leaves it registered if a CLI thread is running it, which is sound
        // because the entry is never freed).
        unsafe { sys::ast_cli_unregister(table.entries.wrapping_add(i)) };
    }
}

/// The `ast_cli_entry` handler of every command.
///
/// # Safety
/// Called by the core only, for an entry registered by [`register`]: `e` is that
/// entry, and `a` is NULL or valid for the call (with `fd` a CLI output
/// descriptor) when `cmd` is neither `CLI_INIT` nor `CLI_GENERATE`.
unsafe extern "C" fn handler(e: *mut sys::ast_cli_entry, cmd: c_int, a: *mut sys::ast_cli_args) -> *mut c_char {
    let Some(c) = TABLE.get().and_then(|t| t.command_of(e)) else { return sys::CLI_FAILURE };
    match cmd {
        sys::CLI_INIT => {
            // SAFETY: `e` is one of our entries (found in the table, so valid for
            // the process), and the core sends `CLI_INIT` only from
            // `__ast_cli_register`, holding its helpers write lock, so no other
            // thread reads these two fields meanwhile. Both strings are `'static`;
            // the core only reads `command` (it copies it with `ast_strdup`),
            // whatever the `*mut` in the C declaration says.
            unsafe {
                (*e).command = c.words.as_ptr().cast_mut();
                (*e).usage = c.usage.as_ptr();
            }
            std::ptr::null_mut()
        }
        sys::CLI_GENERATE => std::ptr::null_mut(),
        _ => {
            if a.is_null() {
                return sys::CLI_FAILURE;
            }
            let text = catch_unwind(AssertUnwindSafe(c.run)).unwrap_or_else(|_| "chan_moq: internal error\n".into());
            let text = super::cstring(&text);
            // SAFETY: `a` is non-NULL and, by the caller's contract, valid for this
            // call, so reading `fd` is sound; "%s" consumes exactly one `char *`
            // vararg, `text`, which is NUL-terminated and outlives the call
            // (`ast_cli` writes it out before returning).
            unsafe { sys::ast_cli((*a).fd, c"%s".as_ptr(), text.as_ptr()) };
            sys::CLI_SUCCESS
        }
    }
}

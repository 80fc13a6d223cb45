//! Audio formats and format capability sets (`format.h`, `format_cap.h`).
//! The driver speaks two: Opus (passed through as MoQ carries it,
//! docs/CALLS.md §6) and 48 kHz signed linear (transcoded by us).

use crate::sys;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Slin48,
    Opus,
}

impl Format {
    /// The core's cached format object (`ast_format_slin48` …); the core
    /// creates them before loading modules and keeps them for its lifetime.
    pub(crate) fn raw(self) -> *mut sys::ast_format {
        // SAFETY: plain loads of two `struct ast_format *` globals (`static mut`
        // in the bindings) that the core's format cache sets before it loads any
        // module and never reassigns while modules run; no reference to the
        // statics is created. The pointers are NULL or formats the core keeps
        // for its lifetime.
        unsafe {
            match self {
                Format::Slin48 => sys::ast_format_slin48,
                Format::Opus => sys::ast_format_opus,
            }
        }
    }

    /// Which of ours `f` is, if any.
    ///
    /// # Safety
    /// `f` is NULL or points to a live `ast_format` (the caller holds a
    /// reference to it, e.g. the frame it came with) for the duration of the call.
    pub(crate) unsafe fn from_raw(f: *const sys::ast_format) -> Option<Format> {
        if f.is_null() {
            return None;
        }
        [Format::Slin48, Format::Opus].into_iter().find(|ours| {
            let r = ours.raw();
            // SAFETY: `f` is live (caller's contract) and `r` is non-NULL, hence
            // one of the core's cached formats, alive for the core's lifetime;
            // `ast_format_cmp` only reads the two immutable format objects.
            !r.is_null() && unsafe { sys::ast_format_cmp(f, r) } == sys::AST_FORMAT_CMP_EQUAL
        })
    }

    /// Whether the running core knows this format at all.
    pub fn available(self) -> bool {
        !self.raw().is_null()
    }

    /// Samples per 20 ms frame at the format's clock (both run at 48 kHz).
    pub const FRAME_SAMPLES: usize = 960;
}

/// An owned `ast_format_cap` (ao2 object).
pub struct Caps(*mut sys::ast_format_cap);

// SAFETY: `Caps` owns one ao2 reference (atomic count), so it may be released
// on any thread, and the object stays valid while the reference lives.
unsafe impl Send for Caps {}
// SAFETY: `&Caps` gives only `raw()`, and nothing modifies the set after
// `new` returns: we never do, and the core treats a set it is handed (a
// technology's capabilities, a channel's native formats) as immutable, reading
// it or taking its own reference, so concurrent uses are reads only.
unsafe impl Sync for Caps {}

impl Caps {
    /// A capability set of `formats` in preference order (20 ms framing);
    /// formats the core lacks are skipped. `None` if allocation fails.
    pub fn new(formats: &[Format]) -> Option<Caps> {
        // SAFETY: allocates a new ao2 object and hands us its one reference; the
        // flag is a valid `ast_format_cap_flags` and tag/file/func are static C
        // strings. No pointer of ours is retained.
        let cap = unsafe {
            sys::__ast_format_cap_alloc(
                sys::AST_FORMAT_CAP_FLAG_DEFAULT,
                c"chan_moq".as_ptr(),
                c"format.rs".as_ptr(),
                0,
                c"Caps::new".as_ptr(),
            )
        };
        if cap.is_null() {
            return None;
        }
        for f in formats.iter().filter(|f| f.available()) {
            // SAFETY: `cap` is non-NULL and ours alone (not shared yet); `f.raw()`
            // is non-NULL (`available`), a core format alive for the core's
            // lifetime; the set takes its own reference to it.
            unsafe {
                sys::__ast_format_cap_append(cap, f.raw(), 20, c"chan_moq".as_ptr(), c"format.rs".as_ptr(), 0, c"Caps::new".as_ptr())
            };
        }
        Some(Caps(cap))
    }

    pub(crate) fn raw(&self) -> *mut sys::ast_format_cap {
        self.0
    }
}

impl Drop for Caps {
    fn drop(&mut self) {
        // SAFETY: releases the one reference `new` got (`ao2_cleanup`, which
        // also accepts NULL); `self.0` is not used afterwards. Objects that
        // still use the set (channels) hold their own references.
        unsafe { sys::__ao2_cleanup(self.0.cast()) }
    }
}

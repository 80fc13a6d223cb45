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
        // SAFETY: reads of globals the core sets at start-up.
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
    /// `f` is NULL or a live format.
    pub(crate) unsafe fn from_raw(f: *const sys::ast_format) -> Option<Format> {
        if f.is_null() {
            return None;
        }
        [Format::Slin48, Format::Opus].into_iter().find(|ours| {
            let r = ours.raw();
            // SAFETY: both are live formats.
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

// SAFETY: an ao2 object with its own lock; we only read it after building it.
unsafe impl Send for Caps {}
unsafe impl Sync for Caps {}

impl Caps {
    /// A capability set of `formats` in preference order (20 ms framing);
    /// formats the core lacks are skipped. `None` if allocation fails.
    pub fn new(formats: &[Format]) -> Option<Caps> {
        // SAFETY: plain allocation; tag/file/func are static C strings.
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
            // SAFETY: cap is ours; the format is a live core format.
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
        // SAFETY: releases our reference (ao2_cleanup).
        unsafe { sys::__ao2_cleanup(self.0.cast()) }
    }
}

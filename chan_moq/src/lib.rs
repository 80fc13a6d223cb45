//! chan_moq: an Asterisk 22 channel driver for phone calls over Media over
//! QUIC, built as `libchan_moq.so` and installed as `chan_moq.so`.
//! `Dial(MOQ/alice)` rings alice's devices through a draft-18 relay; MoQ
//! calls to `pbx/<ext>` enter the dialplan (docs/CALLS.md).
//!
//! Layers, bottom up:
//! - [`sys`]: raw FFI bindings (generated, committed) plus hand-written constants;
//! - [`ast`]: the small safe wrapper (module registration, channel, frame, formats,
//!   technology, CLI);
//! - [`driver`]: the gateway, written only against `ast` and pub-sub-audio.
//!
//! This file is the module itself, like a C module's `AST_MODULE_INFO(...)` with its
//! `load_module`/`unload_module`/`reload_module`: [`MODULE`], which `ast::module`
//! registers with Asterisk's loader.
//!
//! The FFI layer is `sys` and `ast`: the crate denies `unsafe_code` (Cargo.toml
//! `[lints]`) and only those two modules allow it, below.
//!
//! Test harness: `chan_moq/harness/asterisk.sh` (real Asterisk in a chroot; see its header).

// The FFI layer: `sys` declares Asterisk's C API (`extern` blocks), `ast` wraps it in
// safe types and holds the exported module info, its ELF constructor and the C
// callbacks. Each `unsafe` there says why it is sound; nothing outside may use it.
#[allow(unsafe_code)]
pub mod ast;
pub mod driver;
#[allow(unsafe_code)]
pub mod sys;

/// chan_moq as Asterisk's loader sees it (`AST_MODULE_INFO`); see [`ast::module`].
pub const MODULE: ast::module::Module =
    ast::module::Module { name: c"chan_moq", description: c"MoQ (Media over QUIC) channel driver", load, unload, reload };

static COMMANDS: [ast::cli::Command; 2] = [
    ast::cli::Command {
        words: c"moq show status",
        summary: c"Show the MoQ relay session and settings",
        usage: c"Usage: moq show status\n       Relay, identity, registration state and active calls of chan_moq.\n",
        run: || driver::gateway().map(|g| g.status_text()).unwrap_or_default(),
    },
    ast::cli::Command {
        words: c"moq show channels",
        summary: c"List active MOQ channels",
        usage: c"Usage: moq show channels\n       Each MOQ channel with its direction, remote party, session id and state.\n",
        run: || driver::gateway().map(|g| g.channels_text()).unwrap_or_default(),
    },
];

fn load() -> Result<(), String> {
    driver::logging::install();
    let cfg = driver::read_config()?;
    let gw = driver::Gateway::start(cfg)?;
    *driver::GATEWAY.write().unwrap_or_else(|e| e.into_inner()) = Some(gw.clone());
    if let Err(e) = ast::tech::register(gw.clone()) {
        driver::GATEWAY.write().unwrap_or_else(|e| e.into_inner()).take();
        gw.shutdown();
        return Err(e);
    }
    ast::cli::register(&COMMANDS);
    Ok(())
}

fn unload() -> Result<(), String> {
    if let Some(gw) = driver::gateway() {
        let n = gw.live_legs();
        if n > 0 {
            return Err(format!("{n} MOQ call(s) in progress; hang them up first (e.g. 'channel request hangup all')"));
        }
    }
    ast::cli::unregister();
    ast::tech::unregister();
    if let Some(gw) = driver::GATEWAY.write().unwrap_or_else(|e| e.into_inner()).take() {
        gw.shutdown();
    }
    Ok(())
}

fn reload() -> Result<(), String> {
    let cfg = driver::read_config().map_err(|e| format!("moq.conf not applied: {e}"))?;
    match driver::gateway() {
        Some(gw) => {
            gw.reload(cfg);
            Ok(())
        }
        None => Err("not running; moq.conf not applied".into()),
    }
}

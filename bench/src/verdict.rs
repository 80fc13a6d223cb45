//! What one step of a measurement says: saturated or not, bound by the
//! generator or not, and its one-line summary — shared by the progress lines
//! of [`crate::compare`] and the tables of [`crate::report`].

use crate::load::LoadResult;
use crate::storm::StormResult;

/// A relay stops stepping up once it saturates: loss above 1 %, p99 above
/// 100 ms, or its CPU at 90 % of a core — or when the generator's own CPU
/// reaches 95 % (beyond that the generator, not the relay, is measured).
pub fn saturated(r: &LoadResult) -> bool {
    r.loss() > 0.01 || r.p99_ms > 100.0 || r.relay_cpu_s / r.secs.max(1e-9) > 0.9 || r.ready < r.wanted || generator_bound(r)
}

pub fn generator_bound(r: &LoadResult) -> bool {
    r.gen_cpu_s / r.secs.max(1e-9) > 0.95
}

pub fn load_line(r: &LoadResult) -> String {
    format!(
        "{}/{} up, loss {:.3}% (kernel drops: relay socket {}, others {}), p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, relay {:.1} µs/object ({:.0}% CPU), generator {:.0}% CPU{}",
        r.ready,
        r.wanted,
        r.loss() * 100.0,
        r.drops_relay,
        r.drops_other,
        r.p50_ms,
        r.p99_ms,
        r.p999_ms,
        r.us_per_obj(),
        100.0 * r.relay_cpu_s / r.secs.max(1e-9),
        100.0 * r.gen_cpu_s / r.secs.max(1e-9),
        r.setup_error.as_ref().map(|e| format!(" — setup error: {e}")).unwrap_or_default()
    )
}

pub fn why_saturated(r: &LoadResult) -> String {
    let mut w = Vec::new();
    if r.ready < r.wanted {
        w.push(format!("{} of {} set up: {}", r.ready, r.wanted, r.setup_error.clone().unwrap_or_default()));
    }
    if r.loss() > 0.01 {
        w.push(format!("loss {:.1}%", r.loss() * 100.0));
    }
    if r.p99_ms > 100.0 {
        w.push(format!("p99 {:.0} ms", r.p99_ms));
    }
    if r.relay_cpu_s / r.secs.max(1e-9) > 0.9 {
        w.push(format!("relay CPU {:.0}%", 100.0 * r.relay_cpu_s / r.secs.max(1e-9)));
    }
    if generator_bound(r) {
        w.push(format!("generator CPU {:.0}%: generator-bound", 100.0 * r.gen_cpu_s / r.secs.max(1e-9)));
    }
    w.join(", ")
}

/// The `p` quantile of unsorted samples.
pub fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    crate::pct(&mut v, p)
}

pub fn storm_line(r: &StormResult) -> String {
    format!(
        "{}/{} calls heard the callee ({:.0}% of frames while held); INVITE→ring p50 {:.0} ms, →first audio p50 {:.0} ms p99 {:.0} ms; answer→first audio p50 {:.0} ms; relay {:.0}% CPU, generator {:.0}%{}{}",
        r.ok,
        r.attempted,
        100.0 * pct(&r.heard, 0.5),
        pct(&r.ring_ms, 0.5),
        pct(&r.first_audio_ms, 0.5),
        pct(&r.first_audio_ms, 0.99),
        pct(&r.answer_audio_ms, 0.5),
        100.0 * r.relay_cpu_s / r.secs.max(1e-9),
        100.0 * r.gen_cpu_s / r.secs.max(1e-9),
        r.register_error.as_ref().map(|e| format!(" — registration failed: {e}")).unwrap_or_default(),
        if r.failures.is_empty() { String::new() } else { format!(" — failures: {}", r.failures.join("; ")) }
    )
}

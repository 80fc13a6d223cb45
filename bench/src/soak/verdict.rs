//! Does a sampled quantity grow? A least-squares line through the samples
//! taken after warm-up while the churn runs, its rise projected over that
//! window, against a bound stated per metric; and whether the quantity came
//! back to its idle level once the churn stopped. Pure functions: samples
//! in, verdict out.
//!
//! Why a fitted slope and not first-vs-last: the load itself swings (calls
//! start and end at random, the allocator keeps and returns arenas), so any
//! two samples differ by that swing; a leak is what remains when the swing
//! averages out — a trend over the whole window. The least-squares slope of
//! n samples over a window has a standard error of σ·√(12/n)/window (σ the
//! swing), so over a few hundred samples the projected rise of a flat
//! quantity stays far below the bounds below, while a leak proportional to
//! the calls placed rises linearly and crosses them.

/// How much a metric may rise over the measured window, and whether it must
/// come back to its idle (pre-load) level after the churn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    /// Allowed rise as a share of the warm level (0.05 = 5 %).
    pub rel: f64,
    /// Allowed rise in the metric's unit, whatever the level (a floor for
    /// quantities whose warm level is near zero).
    pub abs: f64,
    /// After the churn stops and every phone has left, the value must be at
    /// most the idle level plus this (None: not checked — RSS, which an
    /// allocator keeps).
    pub back_to_idle: Option<f64>,
}

/// The verdict on one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Growth {
    /// Before any phone registered.
    pub idle: f64,
    pub min: f64,
    /// Mean over the measured (post-warm-up, churning) window.
    pub warm: f64,
    /// Last sample of the churn.
    pub end: f64,
    /// After the churn stopped and the phones left (None: not sampled).
    pub after: Option<f64>,
    /// Least-squares slope, units per minute.
    pub slope_per_min: f64,
    /// slope × window: the rise the trend accounts for.
    pub rise: f64,
    /// The largest rise allowed.
    pub limit: f64,
    /// Why it failed, if it did.
    pub failure: Option<String>,
}

/// A quantity for a message: MiB when the metric counts bytes.
fn amount(name: &str, v: f64) -> String {
    if name.contains("bytes") {
        format!("{:+.2} MiB", v / 1048576.0)
    } else {
        format!("{v:+.1}")
    }
}

/// Least-squares slope of `y` over `t` (units per second); 0 for fewer
/// than two distinct times.
pub fn slope(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    if pts.len() < 2 {
        return 0.0;
    }
    let mt = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let my = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = pts.iter().map(|p| (p.0 - mt).powi(2)).sum();
    if sxx == 0.0 {
        return 0.0;
    }
    pts.iter().map(|p| (p.0 - mt) * (p.1 - my)).sum::<f64>() / sxx
}

/// Judges one metric. `pts` are (seconds since start, value) of the whole
/// churn; those before `warm_from` (s) are the warm-up and only count for
/// `min`. `idle` is the value before the load, `after` the one after it.
pub fn judge(name: &str, pts: &[(f64, f64)], warm_from: f64, idle: f64, after: Option<f64>, b: Bound) -> Growth {
    let measured: Vec<(f64, f64)> = pts.iter().copied().filter(|p| p.0 >= warm_from && p.1.is_finite()).collect();
    let min = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let end = pts.last().map(|p| p.1).unwrap_or(f64::NAN);
    let mut g = Growth {
        idle,
        min: if min.is_finite() { min } else { f64::NAN },
        warm: f64::NAN,
        end,
        after,
        slope_per_min: 0.0,
        rise: 0.0,
        limit: 0.0,
        failure: None,
    };
    if measured.len() < 3 {
        g.failure = Some(format!("{name}: only {} samples after warm-up; run longer", measured.len()));
        return g;
    }
    g.warm = measured.iter().map(|p| p.1).sum::<f64>() / measured.len() as f64;
    let window = measured.last().map(|p| p.0).unwrap_or(0.0) - measured[0].0;
    let s = slope(&measured);
    g.slope_per_min = s * 60.0;
    g.rise = s * window;
    g.limit = (b.rel * g.warm.abs()).max(b.abs);
    if g.rise > g.limit {
        g.failure = Some(format!(
            "{name} grows: {} per minute after warm-up, {} over the {window:.0} s measured (limit {})",
            amount(name, g.slope_per_min),
            amount(name, g.rise),
            amount(name, g.limit).trim_start_matches('+')
        ));
    } else if let (Some(tol), Some(a)) = (b.back_to_idle, after) {
        if a > idle + tol {
            g.failure = Some(format!("{name} did not come back after the churn: {a:.0} with every phone gone, {idle:.0} before any came"));
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: Bound = Bound { rel: 0.05, abs: 0.0, back_to_idle: None };
    const FDS: Bound = Bound { rel: 0.0, abs: 2.0, back_to_idle: Some(0.0) };

    /// A flat quantity with a swing of ±10 % (a sawtooth) passes.
    #[test]
    fn a_swinging_flat_level_passes() {
        let pts: Vec<(f64, f64)> = (0..300).map(|i| (i as f64 * 5.0, 100.0 + [-10.0, 0.0, 10.0][i % 3])).collect();
        let g = judge("rss", &pts, 300.0, 50.0, None, RSS);
        assert_eq!(g.failure, None, "{g:?}");
        assert!((g.warm - 100.0).abs() < 1.0);
        assert_eq!(g.min, 90.0);
    }

    /// A steady rise of 6 % of the level over the window fails; 4 % passes.
    #[test]
    fn a_trend_beyond_the_bound_fails() {
        let line = |total: f64| -> Vec<(f64, f64)> { (0..=100).map(|i| (i as f64, 100.0 + total * i as f64 / 100.0)).collect() };
        let fail = judge("rss", &line(6.0), 0.0, 0.0, None, RSS);
        assert_eq!(fail.failure.as_deref(), Some("rss grows: +3.6 per minute after warm-up, +6.0 over the 100 s measured (limit 5.2)"));
        assert!((fail.rise - 6.0).abs() < 1e-9);
        assert!(judge("rss", &line(4.0), 0.0, 0.0, None, RSS).failure.is_none());
    }

    /// Growth during warm-up does not count: only the trend after it.
    #[test]
    fn warm_up_is_excluded() {
        let pts: Vec<(f64, f64)> = (0..100).map(|i| (i as f64, if i < 20 { i as f64 * 10.0 } else { 200.0 })).collect();
        let g = judge("rss", &pts, 20.0, 0.0, None, RSS);
        assert_eq!(g.failure, None, "{g:?}");
        assert_eq!(g.slope_per_min, 0.0);
    }

    /// Flat during the churn, but left above idle when everyone has gone:
    /// a leak per session that the steady load hid.
    #[test]
    fn not_back_to_idle_fails() {
        let pts: Vec<(f64, f64)> = (0..50).map(|i| (i as f64, 30.0)).collect();
        assert!(judge("fds", &pts, 10.0, 12.0, Some(12.0), FDS).failure.is_none());
        let g = judge("fds", &pts, 10.0, 12.0, Some(14.0), FDS);
        assert!(g.failure.as_deref().is_some_and(|f| f.contains("did not come back")), "{g:?}");
    }

    #[test]
    fn too_few_samples_is_a_failure_not_a_pass() {
        let g = judge("rss", &[(0.0, 1.0), (30.0, 1.0)], 10.0, 0.0, None, RSS);
        assert!(g.failure.is_some());
    }

    #[test]
    fn slope_of_a_line_and_of_nothing() {
        assert!((slope(&[(0.0, 1.0), (1.0, 3.0), (2.0, 5.0)]) - 2.0).abs() < 1e-12);
        assert_eq!(slope(&[(1.0, 1.0)]), 0.0);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0)]), 0.0);
    }
}

//! PNG plots for bench/RESULTS.md (plotters, bitmap backend, text through
//! ab_glyph with a system TrueType font).

use crate::compare::Outcome;
use plotters::prelude::*;
use std::path::Path;

/// In relay order: ours, ours with tokens (when run), then the peers.
const COLORS: [RGBColor; 4] = [RGBColor(0, 114, 178), RGBColor(86, 180, 233), RGBColor(213, 94, 0), RGBColor(0, 158, 115)];

/// Registers a sans-serif font once; false when none is installed.
pub(crate) fn font() -> bool {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *OK.get_or_init(|| {
        let candidates = [
            "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
            "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
            "/usr/share/fonts/TTF/DejaVuSans.ttf",
        ];
        for c in candidates {
            if let Ok(b) = std::fs::read(c) {
                let b: &'static [u8] = Box::leak(b.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, b).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

pub(crate) type Series = (String, RGBColor, Vec<(f64, f64)>, bool);

/// One panel: lines with dots; `thin` lines are secondary (p50, generator).
pub(crate) fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    log_y: bool,
    series: &[Series],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let pts: Vec<(f64, f64)> = series.iter().flat_map(|s| s.2.iter().copied()).filter(|p| p.1.is_finite() && p.1 > 0.0).collect();
    let x_max = pts.iter().map(|p| p.0).fold(1.0, f64::max) * 1.05;
    let y_max = pts.iter().map(|p| p.1).fold(1e-3, f64::max) * if log_y { 2.0 } else { 1.15 };
    let y_min = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min).min(y_max / 10.0) * 0.7;
    let mut b = ChartBuilder::on(area);
    b.caption(title, ("sans-serif", 22)).margin(12).x_label_area_size(40).y_label_area_size(60);
    macro_rules! draw {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc(y_label)
                .label_style(("sans-serif", 14))
                .light_line_style(RGBColor(238, 238, 238))
                .y_labels(12)
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| {
                    if *v == 0.0 || *v >= 10.0 {
                        format!("{v:.0}")
                    } else if *v >= 1.0 {
                        format!("{v:.1}")
                    } else {
                        format!("{v:.2}")
                    }
                })
                .draw()?;
            for (name, color, data, thin) in series {
                let data: Vec<(f64, f64)> = data.iter().copied().filter(|p| p.1.is_finite() && p.1 > 0.0).collect();
                let style = if *thin { color.stroke_width(1) } else { color.stroke_width(3) };
                let s = chart.draw_series(LineSeries::new(data.clone(), style))?;
                if !name.is_empty() {
                    let c = *color;
                    s.label(name.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
                }
                chart.draw_series(data.iter().map(|p| Circle::new(*p, if *thin { 2 } else { 4 }, color.filled())))?;
            }
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .position(SeriesLabelPosition::UpperLeft)
                .draw()?;
        }};
    }
    if log_y {
        draw!(b.build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())?);
    } else {
        draw!(b.build_cartesian_2d(0f64..x_max, 0f64..y_max)?);
    }
    Ok(())
}

/// Writes latency-vs-n.png and cpu-vs-n.png into `dir`; returns the files.
pub fn write(o: &Outcome, dir: &Path) -> anyhow::Result<Vec<String>> {
    if !font() {
        anyhow::bail!("no TrueType font found (install fonts-dejavu-core); plots skipped");
    }
    let calls = |g: &dyn Fn(&crate::load::LoadResult) -> f64, i: usize| -> Vec<(f64, f64)> {
        o.calls[i].iter().filter(|(_, r)| r.ready > 0).map(|(n, r)| (*n as f64, g(r))).collect()
    };
    let mut lat: Vec<Series> = Vec::new();
    let mut per_obj: Vec<Series> = Vec::new();
    let mut cores: Vec<Series> = Vec::new();
    for (i, r) in o.relays.iter().enumerate() {
        // Same colour for a peer whether or not the tokens column ran.
        let slot = if o.relays.iter().any(|x| x.kind == crate::relays::Kind::OursAuth) || i == 0 { i } else { i + 1 };
        let c = COLORS[slot % COLORS.len()];
        // Overflowing percentiles are drawn at the histogram's cap.
        let cap = |v: f64| v.min(crate::load::LAT_CAP_MS);
        lat.push((format!("{} p99 (thin: p50)", r.short()), c, calls(&|r| cap(r.p99_ms), i), false));
        lat.push((String::new(), c, calls(&|r| cap(r.p50_ms), i), true));
        per_obj.push((r.short().to_string(), c, calls(&|r| r.us_per_obj(), i), false));
        cores.push((format!("{} relay (thin: generator)", r.short()), c, calls(&|r| 100.0 * r.relay_cpu_s / r.secs.max(1e-9), i), false));
        cores.push((String::new(), c, calls(&|r| 100.0 * r.gen_cpu_s / r.secs.max(1e-9), i), true));
    }
    let f1 = dir.join("latency-vs-n.png");
    {
        let root = BitMapBackend::new(&f1, (900, 560)).into_drawing_area();
        root.fill(&WHITE)?;
        panel(&root, "Latency through the relay vs concurrent calls", "concurrent 1:1 calls (N)", "latency (ms, log)", true, &lat)?;
        root.present()?;
    }
    let f2 = dir.join("cpu-vs-n.png");
    {
        let root = BitMapBackend::new(&f2, (1300, 520)).into_drawing_area();
        root.fill(&WHITE)?;
        let (l, r) = root.split_horizontally(650);
        panel(&l, "Relay CPU per forwarded object", "concurrent 1:1 calls (N)", "µs per object (= ms per 1,000)", false, &per_obj)?;
        panel(&r, "CPU use", "concurrent 1:1 calls (N)", "% of one core", false, &cores)?;
        root.present()?;
    }
    Ok(vec![f1.display().to_string(), f2.display().to_string()])
}

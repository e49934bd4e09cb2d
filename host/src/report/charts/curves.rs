//! Training curves from every run's `metrics.csv`: accuracy and loss per epoch (solid:
//! validation, dashed: training), and the hint loss of hint training when a run has it.
//! Epochs count across phases, so a `hints` run's distillation starts after its hint
//! epochs. Losses are on a log scale: KD's objective is several times the cross-entropy.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::{LABEL, Swatch, TITLE, legend, legend_height, placeholder, run_color};
use crate::report::runs::{MetricRow, Run};

const PANEL: (u32, u32) = (560, 450);

/// One panel: what it plots of a row.
struct Panel {
    title: &'static str,
    y_desc: &'static str,
    /// Hint training rows (true) or classifying rows (false).
    hints: bool,
    /// `(training, validation)` of a row.
    values: fn(&MetricRow) -> (Option<f64>, Option<f64>),
    log_y: bool,
}

const PANELS: [Panel; 3] = [
    Panel {
        title: "accuracy",
        y_desc: "accuracy (%)",
        hints: false,
        values: |m| (m.train_accuracy.map(|a| 100.0 * a), m.valid_accuracy.map(|a| 100.0 * a)),
        log_y: false,
    },
    Panel {
        title: "loss (training: each method's objective; validation: cross-entropy)",
        y_desc: "loss (log scale)",
        hints: false,
        values: |m| (Some(m.train_loss), Some(m.valid_loss)),
        log_y: true,
    },
    Panel {
        title: "hint loss (stage 1 of hints)",
        y_desc: "hint loss",
        hints: true,
        values: |m| (Some(m.train_loss), Some(m.valid_loss)),
        log_y: false,
    },
];

/// The chart as SVG.
pub fn draw(runs: &[Run]) -> anyhow::Result<String> {
    let title = "Training curves per epoch";
    if runs.iter().all(|r| r.metrics.is_empty()) {
        return placeholder(title, "No run has a metrics.csv row yet.");
    }
    let panels: Vec<&Panel> =
        PANELS.iter().filter(|p| runs.iter().any(|r| r.metrics.iter().any(|m| is_hint(m) == p.hints))).collect();
    let mut entries: Vec<(Swatch, String)> = runs
        .iter()
        .filter(|r| !r.metrics.is_empty())
        .map(|r| (Swatch::Line(run_color(Some(&r.name))), r.name.clone()))
        .collect();
    let grey = RGBColor(90, 90, 90);
    entries.push((Swatch::Line(grey), "validation".into()));
    entries.push((Swatch::Dashed(grey), "training".into()));
    let key_height = legend_height(entries.len(), entries.len());
    let size = (PANEL.0 * panels.len() as u32, 40 + key_height + PANEL.1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, TITLE)?;
        let (key, plots) = root.split_vertically(key_height);
        // The legend centred under the title: one row.
        let side = (size.0 as i32 - 130 * entries.len() as i32).max(0) as u32 / 2;
        let key = key.margin(0, 0, side, side);
        legend(&key, &entries, entries.len())?;
        for (area, panel) in plots.split_evenly((1, panels.len())).iter().zip(panels) {
            draw_panel(area, panel, runs)?;
        }
        root.present()?;
    }
    Ok(svg)
}

fn is_hint(row: &MetricRow) -> bool {
    row.phase == "hints"
}

/// `(epoch across phases, value)` of one run's rows in this panel.
fn series(run: &Run, panel: &Panel, validation: bool) -> Vec<(f64, f64)> {
    run.metrics
        .iter()
        .enumerate()
        .filter(|(_, m)| is_hint(m) == panel.hints)
        .filter_map(|(i, m)| {
            let (train, valid) = (panel.values)(m);
            Some(((i + 1) as f64, if validation { valid? } else { train? }))
        })
        .filter(|(_, v)| v.is_finite() && (!panel.log_y || *v > 0.0))
        .collect()
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel, runs: &[Run]) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let all: Vec<(f64, f64)> =
        runs.iter().flat_map(|r| [series(r, panel, true), series(r, panel, false)]).flatten().collect();
    let x_max = all.iter().map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (1.0, 2.0) };
    let x = 0.5..x_max + 0.5;
    let mut builder = ChartBuilder::on(area);
    builder.caption(panel.title, LABEL).margin(15).x_label_area_size(45).y_label_area_size(65);
    if panel.log_y {
        // Base 2: a label at every doubling, where base 10 may leave a short range bare.
        // The axis starts at a power of two, so the lowest curve has a label under it.
        let bottom = 2f64.powf((lo / 1.05).log2().floor());
        let mut chart = builder.build_cartesian_2d(x, (bottom..hi * 1.15).log_scale().base(2.0))?;
        lines(&mut chart, panel, runs, x_max)
    } else {
        let pad = (0.08 * (hi - lo)).max(0.05 * hi.abs()).max(0.5);
        let mut chart = builder.build_cartesian_2d(x, (lo - pad)..(hi + pad))?;
        lines(&mut chart, panel, runs, x_max)
    }
}

/// The mesh and every run's two curves.
fn lines<DB, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    panel: &Panel,
    runs: &[Run],
    epochs: f64,
) -> anyhow::Result<()>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("epoch (all phases)")
        .y_desc(panel.y_desc)
        .axis_desc_style(LABEL)
        .label_style(LABEL)
        .x_labels(epochs as usize + 1)
        // Epochs are whole: the ticks between them go unlabelled.
        .x_label_formatter(&|v| if (v - v.round()).abs() < 1e-6 { format!("{v:.0}") } else { String::new() })
        .y_label_formatter(&|v| trimmed(*v))
        .light_line_style(BLACK.mix(0.03))
        .draw()?;
    for run in runs {
        let color = run_color(Some(&run.name));
        let valid = series(run, panel, true);
        chart.draw_series(LineSeries::new(valid.clone(), color.stroke_width(2)))?;
        chart.draw_series(valid.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
        let train = series(run, panel, false);
        chart.draw_series(train.iter().map(|&p| Circle::new(p, 2, color.stroke_width(1))))?;
        chart.draw_series(DashedLineSeries::new(train, 6, 4, color.stroke_width(1)))?;
    }
    Ok(())
}

/// `0.50` → `0.5`, `75.00` → `75`.
fn trimmed(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

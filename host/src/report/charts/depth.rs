//! Test accuracy against depth at a fixed multiplication budget, one line per method:
//! the paper's Figure 2 for our data. The teacher is a dashed line across; a depth a
//! method has not finished is a gap in its line.

use plotters::prelude::*;

use super::{LABEL, Swatch, framed, placeholder, plot_with_legend, run_color};
use crate::sweep::record::Sweep;

const WIDTH: u32 = 900;
const PLOT_HEIGHT: u32 = 470;
const LEGEND_COLUMNS: usize = 2;
const TEACHER: RGBColor = RGBColor(40, 40, 40);

/// The chart as SVG.
pub fn draw(sweep: &Sweep) -> anyhow::Result<String> {
    let title =
        format!("Test accuracy against depth at {:.2}M multiply-accumulates", sweep.setting.budget_macs as f64 / 1e6);
    let points: Vec<(usize, &str, f64)> = sweep
        .rows
        .iter()
        .flat_map(|row| row.accuracies.iter().filter_map(|&(m, a)| Some((row.depth, m.name(), 100.0 * a?))))
        .collect();
    if points.is_empty() {
        return placeholder(&title, "No student of the sweep has finished: nothing to draw yet.");
    }
    let teacher = 100.0 * sweep.setting.teacher_test_accuracy;
    let depths = || sweep.rows.iter().map(|r| r.depth as i32);
    let (x_min, x_max) = (depths().min().unwrap_or(0) - 1, depths().max().unwrap_or(0) + 1);
    let accuracies = || points.iter().map(|p| p.2).chain(std::iter::once(teacher));
    let (y_min, y_max) = (accuracies().fold(f64::INFINITY, f64::min), accuracies().fold(f64::NEG_INFINITY, f64::max));
    let pad = (0.1 * (y_max - y_min)).max(0.3);
    let methods: Vec<&str> = sweep.rows[0].accuracies.iter().map(|(m, _)| m.name()).collect();
    let mut entries = vec![(Swatch::Dashed(TEACHER), format!("teacher {}: {teacher:.2}%", sweep.setting.teacher_name))];
    entries.extend(methods.iter().map(|&m| (Swatch::Line(run_color(Some(m))), format!("FitNet {m}"))));
    plot_with_legend((WIDTH, PLOT_HEIGHT), &entries, LEGEND_COLUMNS, |plot| {
        let mut chart = framed(plot, &title)
            // Ticks at the depths swept, not at round numbers between them.
            .build_cartesian_2d(
                (x_min..x_max).with_key_points(depths().collect()),
                (y_min - pad).max(0.0)..(y_max + pad).min(100.0),
            )?;
        chart
            .configure_mesh()
            .x_desc("conv layers")
            .y_desc("test accuracy (%)")
            .axis_desc_style(LABEL)
            .label_style(LABEL)
            .x_labels(sweep.rows.len().max(2))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .light_line_style(BLACK.mix(0.03))
            .draw()?;
        chart.draw_series(DashedLineSeries::new(
            [(x_min, teacher), (x_max, teacher)],
            8,
            6,
            TEACHER.stroke_width(2),
        ))?;
        for &method in &methods {
            let color = run_color(Some(method));
            let line: Vec<Option<(i32, f64)>> = sweep
                .rows
                .iter()
                .map(|row| {
                    let accuracy = row.accuracies.iter().find(|(m, _)| m.name() == method)?.1?;
                    Some((row.depth as i32, 100.0 * accuracy))
                })
                .collect();
            // A gap where a depth is missing, so the line never implies a measurement.
            for segment in line.split(Option::is_none) {
                let segment: Vec<(i32, f64)> = segment.iter().flatten().copied().collect();
                chart.draw_series(LineSeries::new(segment.iter().copied(), color.stroke_width(3)))?;
                chart.draw_series(segment.iter().map(|&at| Circle::new(at, 5, color.filled())))?;
            }
        }
        Ok(())
    })
}

//! Test accuracy against parameters (log x): the teacher, each student method in
//! float32 and the int8 student, one marker each, named with its accuracy in a legend
//! below the plot.

use plotters::prelude::*;

use super::{LABEL, Swatch, framed, placeholder, plot_with_legend, run_color, short_count};
use crate::report::stages::{Precision, Stage};

const WIDTH: u32 = 900;
const PLOT_HEIGHT: u32 = 470;
const LEGEND_COLUMNS: usize = 2;

/// The chart as SVG.
pub fn draw(stages: &[Stage]) -> anyhow::Result<String> {
    let title = "Test accuracy against parameters";
    let points: Vec<(&Stage, f64)> = stages.iter().filter_map(|s| Some((s, 100.0 * s.accuracy?))).collect();
    if points.is_empty() {
        return placeholder(title, "No run has finished: no test accuracy to draw yet.");
    }
    let params = || points.iter().map(|(s, _)| s.params.max(1) as f64);
    let accuracies = || points.iter().map(|&(_, a)| a);
    let (x_min, x_max) = (params().fold(f64::INFINITY, f64::min), params().fold(0.0, f64::max));
    let (y_min, y_max) = (accuracies().fold(f64::INFINITY, f64::min), accuracies().fold(f64::NEG_INFINITY, f64::max));
    let pad = (0.15 * (y_max - y_min)).max(0.3);
    let entries: Vec<(Swatch, String)> = points
        .iter()
        .map(|&(stage, accuracy)| {
            let label = format!("{}: {accuracy:.2}%, {} params", name(stage), short_count(stage.params as f64));
            (swatch(stage), label)
        })
        .collect();
    plot_with_legend((WIDTH, PLOT_HEIGHT), &entries, LEGEND_COLUMNS, |plot| {
        let mut chart = framed(plot, title).build_cartesian_2d(
            ((x_min / 3.0)..(x_max * 3.0)).log_scale(),
            (y_min - pad).max(0.0)..(y_max + pad).min(100.0),
        )?;
        chart
            .configure_mesh()
            .x_desc("parameters (log scale)")
            .y_desc("test accuracy (%)")
            .axis_desc_style(LABEL)
            .label_style(LABEL)
            .x_label_formatter(&|v| short_count(*v))
            .y_label_formatter(&|v| format!("{v:.1}"))
            .light_line_style(BLACK.mix(0.03))
            .draw()?;
        for &(stage, accuracy) in &points {
            let at = (stage.params.max(1) as f64, accuracy);
            // A larger open square for the int8 student, so that the float32 point
            // under it stays visible.
            match swatch(stage) {
                Swatch::OpenSquare(c) => {
                    chart.draw_series(std::iter::once(
                        EmptyElement::at(at) + Rectangle::new([(-9, -9), (9, 9)], c.stroke_width(2)),
                    ))?;
                }
                _ => {
                    let color = run_color(stage.run.as_deref());
                    chart.draw_series(std::iter::once(Circle::new(at, 6, color.filled())))?;
                }
            }
        }
        Ok(())
    })
}

fn swatch(stage: &Stage) -> Swatch {
    match stage.precision {
        Precision::Int8 => Swatch::OpenSquare(run_color(None)),
        Precision::Float32 => Swatch::Dot(run_color(stage.run.as_deref())),
    }
}

fn name(stage: &Stage) -> String {
    match (stage.precision, &stage.run) {
        (Precision::Int8, Some(run)) => format!("FitNet int8 (from {run})"),
        (Precision::Int8, None) => "FitNet int8".into(),
        (Precision::Float32, _) => format!("{} float32", stage.label),
    }
}

//! The report's pictures, drawn with plotters as SVG: no font files and no system
//! libraries (the viewer sets the text; plotters only estimates its extent for layout).
//!
//! - [`accuracy`]: test accuracy against parameters, log x, per stage.
//! - [`layers`]: MACs and bytes per step of the int8 student.
//! - [`curves`]: loss and accuracy per epoch of every run, from `metrics.csv`.
//! - [`depth`]: test accuracy against depth per method, for a depth sweep.

pub mod accuracy;
pub mod curves;
pub mod depth;
pub mod layers;

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;

use super::Report;
use crate::run::dir::write_atomic;

/// File names of the charts in the output directory (the Markdown links to them).
pub const ACCURACY_CHART: &str = "accuracy.svg";
pub const LAYERS_CHART: &str = "layers.svg";
pub const TRAINING_CHART: &str = "training.svg";
pub const DEPTH_CHART: &str = "depth.svg";

/// Draws every chart of `report` into `dir`; returns their paths.
pub fn draw_all(report: &Report, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut charts = vec![
        (ACCURACY_CHART, accuracy::draw(&report.stages)?),
        (LAYERS_CHART, layers::draw(&report.steps)?),
        (TRAINING_CHART, curves::draw(&report.runs)?),
    ];
    if let Some(sweep) = &report.sweep {
        charts.push((DEPTH_CHART, depth::draw(sweep)?));
    }
    let mut paths = Vec::new();
    for (name, svg) in charts {
        let path = dir.join(name);
        write_atomic(&path, svg.as_bytes())?;
        paths.push(path);
    }
    Ok(paths)
}

/// The colour of a run everywhere in the report; the int8 student is `None`.
pub(crate) fn run_color(run: Option<&str>) -> RGBColor {
    match run {
        Some("teacher") => RGBColor(40, 40, 40),
        Some("scratch") => RGBColor(31, 119, 180),
        Some("kd") => RGBColor(255, 127, 14),
        Some("hints") => RGBColor(44, 160, 44),
        _ => RGBColor(214, 39, 40),
    }
}

/// Title and axis fonts, one size for every chart.
pub(crate) const TITLE: (&str, u32) = ("sans-serif", 22);
pub(crate) const LABEL: (&str, u32) = ("sans-serif", 15);

/// `26226` → `26.2K`, `1500000` → `1.5M`, `0.25` → `0.25`, for axis labels.
pub(crate) fn short_count(v: f64) -> String {
    let (value, unit) = match v.abs() {
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e3 => (v / 1e3, "K"),
        _ => (v, ""),
    };
    // Two decimals for small values, so that close ticks (0.05, 0.1) stay apart.
    let text = if v.abs() < 10.0 { format!("{value:.2}") } else { format!("{value:.1}") };
    format!("{}{unit}", text.trim_end_matches('0').trim_end_matches('.'))
}

/// How a legend entry is drawn.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Swatch {
    Line(RGBColor),
    Dashed(RGBColor),
    Dot(RGBColor),
    OpenSquare(RGBColor),
    Bar(RGBColor),
}

/// A legend in its own strip, outside every plot, so it never covers data: `entries`
/// in a grid of `columns`, row by row.
pub(crate) fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(Swatch, String)],
    columns: usize,
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    const ROW: i32 = 24;
    let width = area.dim_in_pixel().0 as i32 / columns.max(1) as i32;
    for (i, (swatch, text)) in entries.iter().enumerate() {
        let (x, y) = (20 + width * (i % columns) as i32, 8 + ROW * (i / columns) as i32);
        let mid = y + ROW / 2 - 2;
        match *swatch {
            Swatch::Line(c) => area.draw(&PathElement::new([(x, mid), (x + 24, mid)], c.stroke_width(3)))?,
            Swatch::Dashed(c) => {
                for dash in [x, x + 10, x + 20] {
                    area.draw(&PathElement::new([(dash, mid), (dash + 5, mid)], c.stroke_width(2)))?;
                }
            }
            Swatch::Dot(c) => area.draw(&Circle::new((x + 12, mid), 6, c.filled()))?,
            Swatch::OpenSquare(c) => {
                area.draw(&Rectangle::new([(x + 5, mid - 7), (x + 19, mid + 7)], c.stroke_width(2)))?
            }
            Swatch::Bar(c) => area.draw(&Rectangle::new([(x + 4, mid - 7), (x + 20, mid + 7)], c.filled()))?,
        }
        area.draw(&Text::new(text.clone(), (x + 32, mid - 8), LABEL.into_font()))?;
    }
    Ok(())
}

/// Height of a legend strip of `entries` in `columns`.
pub(crate) fn legend_height(entries: usize, columns: usize) -> u32 {
    16 + 24 * entries.div_ceil(columns.max(1)) as u32
}

/// A plot `width` x `plot_height` drawn by `plot`, above a strip with the legend of
/// `entries` in `columns`, as SVG.
pub(crate) fn plot_with_legend(
    (width, plot_height): (u32, u32),
    entries: &[(Swatch, String)],
    columns: usize,
    plot: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let size = (width, plot_height + legend_height(entries.len(), columns));
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let (area, key) = root.split_vertically(plot_height);
        plot(&area)?;
        legend(&key, entries, columns)?;
        root.present()?;
    }
    Ok(svg)
}

/// A chart on `area` with `title` and room for labelled axes, as every plot here has.
pub(crate) fn framed<'a, 'b, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    title: &str,
) -> ChartBuilder<'a, 'b, DB> {
    let mut builder = ChartBuilder::on(area);
    builder.caption(title, TITLE).margin(20).x_label_area_size(50).y_label_area_size(70);
    builder
}

/// A picture that says there is nothing to draw yet.
pub(crate) fn placeholder(title: &str, message: &str) -> anyhow::Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 200)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, TITLE)?;
        root.draw(&Text::new(message.to_string(), (40, 60), LABEL.into_font()))?;
        root.present()?;
    }
    Ok(svg)
}

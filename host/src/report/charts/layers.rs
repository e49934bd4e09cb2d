//! The int8 student per step: multiply-accumulates above; constant (weight) bytes, output
//! activation bytes and arena bytes below, grouped per step.

use plotters::coord::Shift;
use plotters::coord::ranged1d::SegmentedCoord;
use plotters::coord::types::{RangedCoordf64, RangedCoordu32};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{LABEL, Swatch, TITLE, legend, legend_height, placeholder, short_count};
use crate::report::layers::StepRow;

/// Width at least, and per step beyond that, so that step labels never collide.
const WIDTH: u32 = 1000;
const STEP_WIDTH: u32 = 80;
/// Height of each of the two panels.
const PANEL_HEIGHT: u32 = 370;

const MACS: RGBColor = RGBColor(31, 119, 180);
/// Weight, activation and arena bytes.
const BYTES: [(RGBColor, &str); 3] = [
    (RGBColor(148, 103, 189), "weights, biases, requantization (flash)"),
    (RGBColor(23, 190, 207), "output activations"),
    (RGBColor(127, 127, 127), "arena while the step runs (RAM)"),
];

/// The chart as SVG.
pub fn draw(steps: &[StepRow]) -> anyhow::Result<String> {
    let title = "The int8 student step by step";
    if steps.is_empty() {
        return placeholder(title, "The blob has no steps.");
    }
    let mut svg = String::new();
    {
        let width = WIDTH.max(120 + STEP_WIDTH * steps.len() as u32);
        let size = (width, 40 + 2 * PANEL_HEIGHT + legend_height(BYTES.len(), BYTES.len()));
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(title, TITLE)?;
        let (top, rest) = root.split_vertically(PANEL_HEIGHT);
        let (bottom, key) = rest.split_vertically(PANEL_HEIGHT);
        macs_panel(&top, steps)?;
        bytes_panel(&bottom, steps)?;
        let entries: Vec<(Swatch, String)> =
            BYTES.iter().map(|&(c, name)| (Swatch::Bar(c), name.to_string())).collect();
        legend(&key, &entries, BYTES.len())?;
        root.present()?;
    }
    Ok(svg)
}

/// `3 conv`, `2 pool`: the step's index and its first word.
fn step_label(steps: &[StepRow], segment: &SegmentValue<u32>) -> String {
    let i = match segment {
        SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => *i as usize,
        SegmentValue::Last => return String::new(),
    };
    let Some(step) = steps.get(i) else { return String::new() };
    let kind = match step.op.split(' ').next().unwrap_or("") {
        "max" | "avg" => "pool",
        "global" => "gap",
        other => other,
    };
    format!("{i} {kind}")
}

/// One segment per step: plotters' integer ranges include their end.
fn categories(steps: u32) -> SegmentedCoord<RangedCoordu32> {
    (0..steps.saturating_sub(1)).into_segmented()
}

/// A panel with one segment per step on x and `0..top` on y, its mesh and labels drawn;
/// `text` is the caption, the y axis's name and the x axis's, if any.
fn step_chart<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    steps: &[StepRow],
    top: f64,
    text: (&str, &str, Option<&str>),
) -> anyhow::Result<ChartContext<'a, DB, Cartesian2d<SegmentedCoord<RangedCoordu32>, RangedCoordf64>>>
where
    DB::ErrorType: 'static,
{
    let (caption, y_desc, x_desc) = text;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, LABEL)
        .margin(15)
        .x_label_area_size(if x_desc.is_some() { 50 } else { 35 })
        .y_label_area_size(70)
        .build_cartesian_2d(categories(steps.len() as u32), 0.0..top)?;
    let x_label = |v: &SegmentValue<u32>| step_label(steps, v);
    let y_label = |v: &f64| short_count(*v);
    let mut mesh = chart.configure_mesh();
    mesh.disable_x_mesh()
        .x_labels(steps.len())
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .y_desc(y_desc)
        .light_line_style(BLACK.mix(0.03))
        .axis_desc_style(LABEL)
        .label_style(LABEL);
    if let Some(x_desc) = x_desc {
        mesh.x_desc(x_desc);
    }
    mesh.draw()?;
    Ok(chart)
}

fn macs_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, steps: &[StepRow]) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let top = steps.iter().map(|s| s.macs).max().unwrap_or(0).max(1) as f64 * 1.15;
    let mut chart = step_chart(area, steps, top, ("multiply-accumulates per image", "MACs", None))?;
    chart.draw_series(steps.iter().enumerate().map(|(i, s)| {
        let i = i as u32;
        let mut bar =
            Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), s.macs as f64)], MACS.filled());
        bar.set_margin(0, 0, 8, 8);
        bar
    }))?;
    chart.draw_series(steps.iter().enumerate().filter(|(_, s)| s.macs > 0).map(|(i, s)| {
        Text::new(
            short_count(s.macs as f64),
            (SegmentValue::CenterOf(i as u32), s.macs as f64 + top * 0.02),
            TextStyle::from(LABEL.into_font()).pos(Pos::new(HPos::Center, VPos::Bottom)),
        )
    }))?;
    Ok(())
}

fn bytes_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, steps: &[StepRow]) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    let n = steps.len() as u32;
    let values = |s: &StepRow| [s.weight_bytes, s.activation_bytes, s.arena_bytes];
    // In KB, so that the axis's round numbers are round numbers of KB.
    let top = steps.iter().flat_map(values).max().unwrap_or(0).max(1) as f64 / 1024.0 * 1.15;
    let mut chart = step_chart(area, steps, top, ("bytes per step", "KB", Some("step (see the layer table)")))?;
    // Three bars side by side in each step's segment, placed by pixel margins.
    let segment = (chart.plotting_area().dim_in_pixel().0 / n.max(1)).max(9);
    let inner = segment.saturating_sub(8);
    let third = inner / 3;
    for (k, (color, _)) in BYTES.iter().enumerate() {
        let k = k as u32;
        let (left, right) = (4 + k * third, 4 + inner - (k + 1) * third);
        chart.draw_series(steps.iter().enumerate().map(|(i, s)| {
            let i = i as u32;
            let value = values(s)[k as usize] as f64 / 1024.0;
            let mut bar =
                Rectangle::new([(SegmentValue::Exact(i), 0.0), (SegmentValue::Exact(i + 1), value)], color.filled());
            bar.set_margin(0, 0, left, right);
            bar
        }))?;
    }
    Ok(())
}

//! `fit.json`, `fit.md` and `pareto.svg` of a search.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;

use super::pareto::{self, Point};
use super::record::{Answer, Record};
use super::space::{Candidate, Price, join_widths, kib};
use crate::report::charts::{LABEL, Swatch, framed, placeholder, plot_with_legend};
use crate::run::dir::write_atomic;

pub const RECORD_FILE: &str = "fit.json";
pub const MARKDOWN_FILE: &str = "fit.md";
pub const CHART_FILE: &str = "pareto.svg";

/// The heading `cargo xtask prove` replaces the section under.
pub const PROOF_HEADING: &str = "## Proof of fit";

/// Writes the three files into `dir`.
pub fn all(record: &Record, dir: &Path) -> anyhow::Result<()> {
    write_atomic(&dir.join(RECORD_FILE), serde_json::to_string_pretty(record)?.as_bytes())?;
    write_atomic(&dir.join(CHART_FILE), chart(record)?.as_bytes())?;
    write_atomic(&dir.join(MARKDOWN_FILE), markdown(record).as_bytes())
}

/// A price in words: flash, RAM and time.
pub fn needs(price: &Price) -> String {
    let time = match (price.ms, price.instructions) {
        (Some(ms), Some(n)) => format!(", {ms:.1} ms ({:.2}M instructions)", n / 1e6),
        _ => String::new(),
    };
    format!("{:.1} KiB flash, {:.1} KiB RAM{time}", kib(price.flash_bytes), kib(price.ram_bytes))
}

/// Each candidate's best accuracy so far: the validation accuracy of the highest rung
/// it was trained in, with that rung.
fn reached(record: &Record, id: &str) -> Option<(usize, f64)> {
    record
        .rungs
        .iter()
        .enumerate()
        .rev()
        .find_map(|(k, rung)| rung.results.iter().find(|r| r.id == id).map(|r| (k, r.valid_accuracy)))
}

/// The first rung's points (every selected candidate trained with one setting), with
/// their candidates.
fn first_rung(record: &Record) -> Vec<(&Candidate, Point)> {
    let Some(rung) = record.rungs.first() else { return Vec::new() };
    rung.results
        .iter()
        .filter_map(|r| {
            let c = record.candidates.iter().find(|c| c.id == r.id)?;
            Some((c, c.point(r.valid_accuracy)))
        })
        .collect()
}

/// The Markdown report.
pub fn markdown(record: &Record) -> String {
    let s = &record.setting;
    let t = &s.target;
    let mut md = format!("# A student for {}\n\n", t.name);
    let _ = writeln!(md, "Target: {}. {}.\n", t.describe(), capitalize(&t.note));
    let _ = writeln!(
        md,
        "Teacher: {} (`{}`), {:.2}% test accuracy. Students are the generated FitNet family (3x3 maxout convs \
         in three stages split by 2x2 max pooling, then softmax) at budgets of {} multiply-accumulates, trained \
         with hints from the teacher's hint layer.\n",
        record.teacher_name,
        s.teacher.display(),
        100.0 * record.teacher_test_accuracy,
        s.budgets.iter().map(|m| format!("{:.2}M", *m as f64 / 1e6)).collect::<Vec<_>>().join(", ")
    );
    md += &how_priced(record);
    if let Some(answer) = &record.chosen {
        md += "\n## The answer\n\n";
        md += &answer_table(record, answer);
    }
    md += "\n## The search\n\n";
    let fitting = record.candidates.iter().filter(|c| c.pruned.is_none()).count();
    let _ = writeln!(
        md,
        "{} students generated (the ladder's, and the widest of each shape that fits), {} pruned before \
         training (they cannot fit), {} fit; {} of them (half among the widest of each shape, half among the rest, \
         each half spread over the estimated time) entered successive halving: each rung keeps the best 1/{} by validation accuracy \
         (the test set never chooses) and trains it {} times longer, from {} epochs up to {}.\n",
        record.candidates.len(),
        record.candidates.len() - fitting,
        fitting,
        record.selected.len(),
        s.eta,
        s.eta,
        s.first_epochs,
        s.max_epochs
    );
    let data = match s.subset {
        Some(n) => format!("a seeded sample of {n} training images"),
        None => "every training image".into(),
    };
    let _ = writeln!(
        md,
        "Every run: {data}, {} validation images held out (split seed {}), batch {}, learning rate {} to {}, seed \
         {}; a quarter of each rung's epochs (at least one) hint training, the rest knowledge distillation (τ = \
         3, λ from 4 to 1).\n",
        s.valid,
        s.split_seed,
        s.schedule.batch_size,
        s.schedule.learning_rate,
        s.schedule.final_learning_rate,
        s.schedule.seed
    );
    for (k, rung) in record.rungs.iter().enumerate() {
        let students = match rung.results.len() {
            1 => "1 student".to_string(),
            n => format!("{n} students"),
        };
        match record.rungs[..k].iter().position(|r| r.epochs == rung.epochs) {
            Some(same) => {
                let _ = writeln!(
                    md,
                    "- rung {}: {students}, {} epochs: the runs of rung {} (as many epochs), not trained again",
                    k + 1,
                    rung.epochs,
                    same + 1
                );
            }
            None => {
                let _ = writeln!(
                    md,
                    "- rung {}: {students}, {} epochs ({} of hints), {:.0} s of training",
                    k + 1,
                    rung.epochs,
                    rung.hint_epochs,
                    rung.results.iter().map(|r| r.train_seconds).sum::<f64>()
                );
            }
        }
    }
    if !record.rungs.is_empty() {
        let _ = writeln!(
            md,
            "\n![accuracy against time and flash]({CHART_FILE})\n\nThe Pareto front (no other student is as accurate, \
             as fast and as small with one of them better) is taken over the first rung, where every student had \
             the same training: {}.",
            front_ids(record).join(", ")
        );
    }
    md += "\n| student | conv layers | units | pieces | stages | params | MACs | flash KiB | RAM KiB | est. ms | valid (rung) | note |\n";
    md += "|---|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---|\n";
    let mut rows: Vec<&Candidate> = record.candidates.iter().collect();
    let in_search = |c: &Candidate| record.selected.contains(&c.id);
    rows.sort_by(|a, b| in_search(b).cmp(&in_search(a)).then(a.time().total_cmp(&b.time())));
    for c in rows {
        let accuracy = match reached(record, &c.id) {
            Some((k, a)) => format!("{:.2}% ({})", 100.0 * a, k + 1),
            None => "-".into(),
        };
        let chosen = record.chosen.as_ref().is_some_and(|a| a.run.starts_with(format!("candidates/{}", c.id)));
        let mut note = match (&c.pruned, chosen) {
            (_, true) => "**chosen**".to_string(),
            (Some(why), _) => format!("pruned: {why}"),
            (None, _) if in_search(c) => String::new(),
            (None, _) => "fits; not selected".into(),
        };
        if c.edge {
            note = if note.is_empty() { "widest of its shape".into() } else { format!("widest of its shape; {note}") };
        }
        let ms = c.price.ms.map_or("-".into(), |ms| format!("{ms:.1}"));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {}-{}-{} | {} | {:.2}M | {:.1} | {:.1} | {ms} | {accuracy} | {note} |",
            c.id,
            c.depth,
            join_widths(&c.widths),
            c.pieces,
            c.split[0],
            c.split[1],
            c.split[2],
            c.params,
            c.macs as f64 / 1e6,
            kib(c.price.flash_bytes),
            kib(c.price.ram_bytes)
        );
    }
    let _ = writeln!(
        md,
        "\n{PROOF_HEADING}\n\nNot proven yet: `cargo xtask prove --runs DIR` builds the firmware for the board \
         with `student.fnet` (the build refuses a model that does not fit), measures its flash and RAM as linked \
         and counts its instructions under QEMU, and writes this section."
    );
    md
}

fn how_priced(record: &Record) -> String {
    let t = &record.setting.target;
    let mut md = String::from(
        "Each student is priced before training as the device holds it: its untrained network quantized and \
         encoded like the trained one, so the blob, the activation arena and the serve program's frame buffers \
         are exact (weights change values, not sizes); flash adds the serve program's measured code, RAM its \
         other static data and the stack it keeps. ",
    );
    match t.cost() {
        Ok(Some(cost)) => {
            let _ = writeln!(
                md,
                "Time: instructions from the {} cost model (`firmware/memory/cost.txt`, fitted by `cargo xtask \
                 calibrate` on exact QEMU counts of {} random models of this family; on {} held-out models it is \
                 off by {:.1}% on average and {:.1}% at most), times {:.2} cycles per instruction (ARM's published \
                 cycles per instruction class at zero wait states, averaged over those models), at {} MHz; the \
                 estimated cycles of the held-out models were off by {:.1}% at most, so a student's estimate plus \
                 {:.1}% must meet the time budget. Flash wait states and interrupts are not modelled.",
                cost.core,
                cost.fitted,
                cost.held_out,
                100.0 * cost.mean_error,
                100.0 * cost.max_error,
                cost.cycles_per_instruction,
                t.mhz,
                100.0 * cost.cycles_max_error,
                100.0 * cost.cycles_max_error
            );
        }
        _ => {
            let _ = writeln!(md, "Time: no cost model for the {}; students are ranked by MACs.", t.core.key());
        }
    }
    md
}

fn answer_table(record: &Record, chosen: &Answer) -> String {
    let mut md = String::from(
        "| | units per conv layer | params | MACs | flash KiB | RAM KiB | est. ms | valid | test (float) | test (int8) | fits |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let mut row = |label: &str, a: &Answer| {
        let ms = a.price.ms.map_or("-".into(), |ms| format!("{ms:.1}"));
        let _ = writeln!(
            md,
            "| {label} `{}` | {} | {} | {:.2}M | {:.1} | {:.1} | {ms} | {:.2}% | {:.2}% | {:.2}% | {} |",
            a.blob.display(),
            join_widths(&a.widths),
            a.params,
            a.macs as f64 / 1e6,
            kib(a.price.flash_bytes),
            kib(a.price.ram_bytes),
            100.0 * a.valid_accuracy,
            100.0 * a.test_accuracy,
            100.0 * a.int8_test_accuracy,
            a.pruned.as_deref().map_or("yes".into(), |why| format!("no: {why}"))
        );
    };
    row("chosen", chosen);
    if let Some(reference) = &record.reference {
        row("paper's FitNet", reference);
    }
    let _ = writeln!(
        md,
        "\nChosen: the last student standing in successive halving (the most accurate on the validation images at \
         every rung), trained {} epochs in the last rung; the paper's FitNet was trained with that same setting. \
         Test accuracy on {} images; int8 with shared's kernels, as the device runs it.",
        record.rungs.last().map_or(0, |r| r.epochs),
        chosen.test_images
    );
    md
}

fn front_ids(record: &Record) -> Vec<String> {
    let points = first_rung(record);
    let only: Vec<Point> = points.iter().map(|p| p.1).collect();
    pareto::front(&only).into_iter().map(|i| format!("`{}`", points[i].0.id)).collect()
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or_else(String::new, |c| c.to_uppercase().chain(chars).collect())
}

const FRONT: RGBColor = RGBColor(200, 60, 30);
const OTHER: RGBColor = RGBColor(120, 140, 170);
const CHOSEN: RGBColor = RGBColor(20, 20, 20);

/// Validation accuracy of the first rung against estimated time (left) and flash
/// (right); the front in colour, the chosen student ringed.
pub fn chart(record: &Record) -> anyhow::Result<String> {
    let title = format!("Students for {}: first-rung validation accuracy", record.setting.target.name);
    let points = first_rung(record);
    if points.is_empty() {
        return placeholder(&title, "No student has been trained yet: nothing to draw.");
    }
    let only: Vec<Point> = points.iter().map(|p| p.1).collect();
    let on_front = pareto::front(&only);
    let chosen = record
        .chosen
        .as_ref()
        .and_then(|a| points.iter().position(|(c, _)| a.run.starts_with(format!("candidates/{}", c.id))));
    let entries = vec![
        (Swatch::Dot(FRONT), "on the Pareto front".to_string()),
        (Swatch::Dot(OTHER), "dominated".to_string()),
        (Swatch::OpenSquare(CHOSEN), "chosen".to_string()),
    ];
    let has_ms = points.iter().all(|(c, _)| c.price.ms.is_some());
    let time_label = if has_ms { "estimated ms per inference" } else { "MACs" };
    plot_with_legend((1100, 460), &entries, 3, |area| {
        let (left, right) = area.split_horizontally(550);
        let y = || {
            let lo = only.iter().map(|p| p.accuracy).fold(f64::INFINITY, f64::min);
            let hi = only.iter().map(|p| p.accuracy).fold(f64::NEG_INFINITY, f64::max);
            let pad = (0.1 * (hi - lo)).max(0.002);
            (100.0 * (lo - pad)).max(0.0)..(100.0 * (hi + pad)).min(100.0)
        };
        for (panel, x_of, x_label, sub) in [
            (&left, (&|p: &Point| p.time) as &dyn Fn(&Point) -> f64, time_label, "against time"),
            (&right, &|p: &Point| kib(p.flash), "flash (KiB)", "against flash"),
        ] {
            let xs: Vec<f64> = only.iter().map(x_of).collect();
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let pad = (0.08 * (hi - lo)).max(hi.abs() * 0.02 + 1e-9);
            let mut chart = framed(panel, sub).build_cartesian_2d((lo - pad)..(hi + pad), y())?;
            chart
                .configure_mesh()
                .x_desc(x_label)
                .y_desc("validation accuracy (%)")
                .axis_desc_style(LABEL)
                .label_style(LABEL)
                .light_line_style(BLACK.mix(0.03))
                .draw()?;
            for (i, p) in only.iter().enumerate() {
                let color = if on_front.contains(&i) { FRONT } else { OTHER };
                chart.draw_series(std::iter::once(Circle::new((x_of(p), 100.0 * p.accuracy), 5, color.filled())))?;
            }
            if let Some(i) = chosen {
                let at = (x_of(&only[i]), 100.0 * only[i].accuracy);
                chart.draw_series(std::iter::once(Circle::new(at, 10, CHOSEN.stroke_width(2))))?;
            }
        }
        Ok(())
    })
}

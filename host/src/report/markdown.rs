//! The report as Markdown: one section per question, each table computed from the
//! [`Report`], the paper's figures labelled as the paper's.

use std::fmt::Write as _;

use super::Report;
use super::charts::{ACCURACY_CHART, DEPTH_CHART, LAYERS_CHART, TRAINING_CHART};
use super::layers::{peak, shape};
use super::paper::PaperTable;
use super::runs::Run;
use super::stages::{self, FLOAT32_BYTES, Precision, Stage};
use crate::sweep::record::Sweep;

/// Section titles, in order (tests look for them).
pub const SECTIONS: [&str; 6] = [
    "## Stages",
    "## The student layer by layer",
    "## The paper's figures",
    "## Fit on microcontrollers",
    "## Charts",
    "## Training",
];

/// The section of several seeds, after the others when the report has one.
pub const SEEDS_SECTION: &str = "## Several seeds";
/// The section of a depth sweep, last when the report has one.
pub const SWEEP_SECTION: &str = "## Depth sweep";

/// The whole report.
pub fn render(report: &Report, runs_dir: &str) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# FitNets report: {} on {}\n", report.student_name, report.data_name);
    let _ = writeln!(md, "{}\n", report.data_note);
    let names: Vec<&str> = report.runs.iter().map(|r| r.name.as_str()).collect();
    let _ = writeln!(
        md,
        "Runs: `{runs_dir}` ({}). int8 student: {}. Every figure is computed from the run files \
         and the blob, except the paper's, which are labelled as the paper's.\n",
        names.join(", "),
        report.int8.source
    );
    stage_section(&mut md, report);
    layer_section(&mut md, report);
    paper_section(&mut md, report);
    board_section(&mut md, report);
    chart_section(&mut md);
    training_section(&mut md, &report.runs);
    if let Some(seeds) = &report.seeds {
        let _ = writeln!(md, "\n{SEEDS_SECTION}\n");
        let _ = writeln!(
            md,
            "Each student method trained with several seeds, each seed's three methods from the same \
             initial weights (`fitnets compare --seeds`). A difference is called real beyond twice its \
             standard error: the seeds' spread and the test set's sampling error combined.\n"
        );
        md.push_str(seeds);
    }
    if let Some(sweep) = &report.sweep {
        sweep_section(&mut md, sweep);
    }
    md
}

fn sweep_section(md: &mut String, sweep: &Sweep) {
    let _ = writeln!(md, "\n{SWEEP_SECTION}\n");
    let _ = writeln!(
        md,
        "Students of several depths at one multiplication budget, each trained with each \
         method (the paper's Figure 2; `fitnets sweep`).\n"
    );
    md.push_str(&crate::sweep::record::table(sweep));
    let _ = writeln!(md, "\n![Test accuracy against depth]({DEPTH_CHART})");
}

fn stage_section(md: &mut String, report: &Report) {
    let _ = writeln!(md, "{}\n", SECTIONS[0]);
    let _ = writeln!(
        md,
        "| stage | parameters | MACs | model bytes | x fewer parameters | x fewer bytes | speed-up (MACs) | test accuracy |"
    );
    let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let teacher = stages::teacher(&report.stages);
    for row in &report.stages {
        let savings = teacher.map(|t| row.savings(t));
        let ratio = |f: fn(&stages::Savings) -> f64| savings.as_ref().map_or("-".into(), |s| format!("{:.1}x", f(s)));
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            stage_label(row),
            thousands(row.params),
            thousands(row.macs),
            bytes(row.model_bytes),
            ratio(|s| s.params),
            ratio(|s| s.bytes),
            ratio(|s| s.speed_up),
            row.accuracy.map_or("not finished".into(), |a| format!("{:.2}%", 100.0 * a)),
        );
    }
    let _ = writeln!(
        md,
        "\nFloat32 bytes are {FLOAT32_BYTES} per trainable parameter; int8 bytes are the whole blob \
         (weights, biases, requantization, header, labels, pixel table, checksum). Savings are \
         against the float32 teacher; speed-up is the ratio of multiply-accumulates."
    );
    if teacher.is_none() {
        let _ = writeln!(md, "\nNo teacher run: savings are not computed.");
    }
    let images: Vec<String> = report
        .stages
        .iter()
        .filter_map(|s| Some(format!("{} {}", stage_label(s), thousands(s.test_images? as u64))))
        .collect();
    if !images.is_empty() {
        let _ = writeln!(md, "\nTest images behind each accuracy: {}.", images.join(", "));
    }
    if let (Some(drop), Some(run)) = (stages::quantization_drop(&report.stages), &report.int8.run) {
        let _ = writeln!(md, "\nint8 - float32 ({run}): **{drop:+.2} pp** of test accuracy.");
    }
    let int8 = report.stages.iter().find(|s| s.precision == Precision::Int8);
    let float = int8.and_then(|i| {
        report.stages.iter().find(|s| s.precision == Precision::Float32 && s.run.is_some() && s.run == i.run)
    });
    if let (Some(int8), Some(float)) = (int8, float) {
        let _ = writeln!(
            md,
            "\nThe int8 blob is {:.1}x smaller than the same student's float32 weights.",
            float.model_bytes as f64 / int8.model_bytes.max(1) as f64
        );
    }
    for run in report.runs.iter().filter(|r| r.result.is_none()) {
        let _ = writeln!(md, "\n{} ({}) has not finished: {}.", run.label(), run.dir.display(), progress(run));
    }
    if let Some(sentence) = stages::bought(&report.stages) {
        let _ = writeln!(md, "\n**What distillation bought.** {sentence}");
    }
    md.push('\n');
}

fn stage_label(stage: &Stage) -> String {
    match (stage.precision, &stage.run) {
        (Precision::Int8, Some(run)) => format!("FitNet int8 (from {run})"),
        (Precision::Int8, None) => "FitNet int8".into(),
        (Precision::Float32, _) => format!("{} float32", stage.label),
    }
}

fn progress(run: &Run) -> String {
    let planned = run.info.schedule.epochs + run.info.hint_schedule.as_ref().map_or(0, |s| s.epochs);
    format!("{} of {planned} epochs in metrics.csv", run.metrics.len())
}

fn layer_section(md: &mut String, report: &Report) {
    let _ = writeln!(md, "{} (int8, as the device runs it)\n", SECTIONS[1]);
    let _ = writeln!(
        md,
        "| # | step | input | output | parameters | weight bytes | MACs | activation bytes | arena bytes |"
    );
    let _ = writeln!(md, "|---:|---|---|---|---:|---:|---:|---:|---:|");
    let peak = peak(&report.steps);
    for (i, s) in report.steps.iter().enumerate() {
        let arena =
            if Some(i) == peak { format!("**{}** (peak)", thousands(s.arena_bytes)) } else { thousands(s.arena_bytes) };
        let _ = writeln!(
            md,
            "| {i} | {} | {} | {} | {} | {} | {} | {} | {arena} |",
            s.op,
            shape(s.input),
            shape(s.output),
            thousands(s.params),
            thousands(s.weight_bytes),
            thousands(s.macs),
            thousands(s.activation_bytes),
        );
    }
    let sum = |f: fn(&super::layers::StepRow) -> u64| report.steps.iter().map(f).sum::<u64>();
    let weights = sum(|s| s.weight_bytes);
    let _ = writeln!(
        md,
        "| | total | | | {} | {} | {} | | {} |",
        thousands(sum(|s| s.params)),
        thousands(weights),
        thousands(sum(|s| s.macs)),
        thousands(report.needs.arena_bytes)
    );
    let _ = writeln!(
        md,
        "\nA conv, the maxout after it and a max pooling whose windows tile the image run as one \
         step, so neither the pre-maxout nor the unpooled tensor exists (a dense layer and its \
         maxout likewise); each step reads its input from one end of the arena, keeps the fast \
         kernels' scratch (per-channel constants and packed input columns) in the middle and \
         writes its output at the other end. Arena: **{}** ({} without that fusion). Blob: {}, of which {} constants \
         and {} header, labels, pixel table and checksum.\n",
        bytes(report.needs.arena_bytes),
        bytes(report.needs.unfused_arena_bytes),
        bytes(report.needs.blob_bytes),
        bytes(weights),
        bytes(report.needs.blob_bytes.saturating_sub(weights)),
    );
}

fn paper_section(md: &mut String, report: &Report) {
    let Some(paper) = report.paper else {
        let shape = report.runs.first().map_or_else(String::new, |r| {
            let ([h, w, c], classes) = (r.info.config.input, r.info.config.classes);
            format!(" ({h}x{w}x{c}, {classes} classes)")
        });
        let _ = writeln!(
            md,
            "{}\n\nThe paper measured MNIST-like (28x28x1, 10 classes) and CIFAR-10-like (32x32x3, 10 \
             classes) data only; {}{shape} is neither, so no figure of the paper is set beside ours.\n",
            SECTIONS[2], report.data_name
        );
        return;
    };
    let _ = writeln!(md, "{} ({}, {}): the paper's, not ours\n", SECTIONS[2], paper.title, paper.data_set);
    let _ = writeln!(
        md,
        "Romero et al., *FitNets: Hints for Thin Deep Nets*, ICLR 2015, {} ({}), as printed \
         there (rounded). Ours are on {}: compare the pattern, not the numbers, unless the data \
         sets are the same.\n",
        paper.title, paper.data_set, report.data_name
    );
    paper_table(md, paper, report);
}

fn paper_table(md: &mut String, paper: &PaperTable, report: &Report) {
    let measure = paper.measure.name();
    let mults = paper.rows.iter().any(|r| r.mults.is_some());
    let mut header = String::from("| network | parameters (paper) |");
    let mut rule = String::from("|---|---:|");
    if mults {
        header += " multiplications (paper) | x fewer params (paper) | x fewer mults (paper) |";
        rule += "---:|---:|---:|";
    }
    header += &format!(" {measure} (paper) | parameters (ours) | {measure} (ours, {}) |", report.data_name);
    rule += "---:|---:|---:|";
    let _ = writeln!(md, "{header}\n{rule}");
    let teacher = paper.rows[0];
    for row in paper.rows {
        let mut line = format!("| {} | {} |", row.network, approx(row.params));
        if mults {
            let ratio = |a: Option<u64>, b: Option<u64>| match (a, b) {
                (Some(a), Some(b)) if b > 0 => format!("{:.1}x", a as f64 / b as f64),
                _ => "-".into(),
            };
            let _ = write!(
                line,
                " {} | {} | {} |",
                row.mults.map_or("-".into(), approx),
                ratio(Some(teacher.params), Some(row.params)),
                ratio(teacher.mults, row.mults)
            );
        }
        let ours = row.run.and_then(|run| {
            report.stages.iter().find(|s| s.precision == Precision::Float32 && s.run.as_deref() == Some(run))
        });
        let (our_params, our_value) = match ours {
            Some(s) => (
                thousands(s.params),
                s.accuracy.map_or("not finished".into(), |a| format!("{:.2}%", paper.measure.of_accuracy(a))),
            ),
            None => ("-".into(), "-".into()),
        };
        let _ = writeln!(line, " {:.2}% | {our_params} | {our_value} |", row.value);
        md.push_str(&line);
    }
    if mults {
        let _ = writeln!(
            md,
            "\nThe paper's ratios here are computed from its rounded figures; the speed-ups the \
             paper prints were timed, not counted."
        );
    }
    md.push('\n');
}

fn board_section(md: &mut String, report: &Report) {
    let n = &report.needs;
    let _ = writeln!(md, "{}\n", SECTIONS[3]);
    let _ = writeln!(
        md,
        "Flash: blob {} + firmware code {} = **{}**. RAM: arena {} + serve buffers (request and \
         response frames) {} + other static data {} + stack {} = **{}**.\n",
        bytes(n.blob_bytes),
        bytes(n.code_bytes),
        bytes(n.flash()),
        bytes(n.arena_bytes),
        bytes(n.io_bytes),
        bytes(n.static_bytes),
        bytes(n.stack_bytes),
        bytes(n.ram()),
    );
    let _ = writeln!(
        md,
        "The code allowance is a parameter (`--code-kb`; by default the largest `serve` program \
         that `cargo xtask size` measured, `firmware/memory/programs.txt`); this report used {}.\n",
        bytes(report.firmware.code_bytes)
    );
    let _ = writeln!(md, "| board | core | flash | RAM | flash used | RAM used | fits | est. latency | counted |");
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---|---:|---|");
    for fit in &report.fits {
        let b = fit.board;
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {:.1}% | {:.1}% | {} | {} | {} |",
            b.name,
            b.core,
            kb(b.flash_bytes),
            kb(b.ram_bytes),
            100.0 * fit.flash_share,
            100.0 * fit.ram_share,
            if fit.fits() { "yes" } else { "**no**" },
            fit.latency_ms.map_or_else(|| "-".to_string(), milliseconds),
            b.note
        );
    }
    let _ = writeln!(
        md,
        "\nLatency: the student's {} MACs at the cycles per MAC that `cargo xtask bench` estimates for the \
         default FitNet on each core (`firmware/memory/cycles.txt`: exact instruction counts under QEMU priced by \
         ARM's published cycles per instruction class, zero wait states; flash wait states and interrupts not \
         modelled). `cargo xtask bench --model BLOB` measures this blob itself.",
        n.macs
    );
    md.push('\n');
}

/// `0.23 ms`, `4.5 ms`, `246 ms`: two or three significant digits.
fn milliseconds(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn chart_section(md: &mut String) {
    let _ = writeln!(md, "{}\n", SECTIONS[4]);
    let _ = writeln!(md, "![Test accuracy against parameters]({ACCURACY_CHART})\n");
    let _ = writeln!(md, "![MACs and bytes per step of the int8 student]({LAYERS_CHART})\n");
    let _ = writeln!(md, "![Training curves]({TRAINING_CHART})\n");
}

fn training_section(md: &mut String, runs: &[Run]) {
    let _ = writeln!(md, "{}\n", SECTIONS[5]);
    let _ = writeln!(
        md,
        "| run | phases (epochs) | last train loss | last valid loss | last valid accuracy | test accuracy | training time |"
    );
    let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|");
    for run in runs {
        let mut phases: Vec<(String, usize)> = Vec::new();
        for row in &run.metrics {
            match phases.last_mut() {
                Some((phase, n)) if *phase == row.phase => *n += 1,
                _ => phases.push((row.phase.clone(), 1)),
            }
        }
        let phases: Vec<String> = phases.iter().map(|(p, n)| format!("{p} {n}")).collect();
        let last = run.metrics.iter().rev().find(|m| m.valid_accuracy.is_some());
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} |",
            run.label(),
            if phases.is_empty() { "-".into() } else { phases.join(", ") },
            last.map_or("-".into(), |m| format!("{:.4}", m.train_loss)),
            last.map_or("-".into(), |m| format!("{:.4}", m.valid_loss)),
            last.and_then(|m| m.valid_accuracy).map_or("-".into(), |a| format!("{:.2}%", 100.0 * a)),
            run.result.as_ref().map_or("not finished".into(), |r| format!("{:.2}%", 100.0 * r.test_accuracy)),
            minutes(run.metrics.iter().map(|m| m.seconds).sum()),
        );
    }
    let _ = writeln!(
        md,
        "\nTrain loss is each phase's own objective (KD adds the softened teacher term); valid \
         loss is the cross-entropy on the labels for every classifying phase. Training time \
         is the sum of the epochs' training passes in `metrics.csv`, across resumes; \
         loading data and evaluating are left out."
    );
    if runs.iter().any(|run| !run.info.views().is_plain()) {
        let _ = writeln!(
            md,
            "A flip- or shift-averaged network's validation accuracy is its plain network's, as \
             trained; its test accuracy averages the logits of each image with those of its mirror \
             image or its one-pixel shifts."
        );
    }
}

/// `26226` → `26,226`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Board budgets: `1024 KB`.
fn kb(n: u64) -> String {
    format!("{} KB", thousands(n / 1024))
}

/// `27690` → `27,690 B (27.0 KB)`; KB are 1024 bytes.
pub fn bytes(n: u64) -> String {
    if n < 1024 {
        return format!("{n} B");
    }
    format!("{} B ({:.1} KB)", thousands(n), n as f64 / 1024.0)
}

/// The paper's rounded counts: `361000` → `~361K`, `1600000` → `~1.6M`.
fn approx(n: u64) -> String {
    if n >= 1_000_000 { format!("~{}M", trim(n as f64 / 1e6)) } else { format!("~{}K", trim(n as f64 / 1e3)) }
}

fn trim(v: f64) -> String {
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn minutes(seconds: f64) -> String {
    if seconds < 120.0 { format!("{seconds:.0} s") } else { format!("{:.1} min", seconds / 60.0) }
}

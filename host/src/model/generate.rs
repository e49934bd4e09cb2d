//! Students of a given depth at a fixed multiplication budget, for the depth sweep (the
//! paper's Figure 2: as students get deeper they must get thinner to cost the same) and
//! the search of `fitnets fit`.
//!
//! A generated student has `depth` maxout conv layers (3x3, padded 1, `pieces` pieces;
//! one piece is a plain conv with ReLU) in three stages separated by 2x2/2 max pooling,
//! as the paper's MNIST FitNet, then the softmax layer. The sweep's stages hold
//! `depth / 3` layers each, the remainder going to the later, cheaper stages
//! ([`stages`]); `fit` also tries other splits. Every layer starts with the widest common width whose
//! multiply-accumulates stay within the budget; then single layers, from the last one
//! backwards, get one unit more while the total stays within it, so the total lands
//! within [`TOLERANCE`] of the budget (checked; an error says when it cannot).
//!
//! The guided layer is the middle stage's pooled output (`pool2`), as in the paper's MNIST
//! FitNet, whose 4th of 6 layers is guided; the regressor follows from the paper's rule
//! (`crate::model::regressor::regressor_shape`).

use std::fmt::Write as _;

use anyhow::{bail, ensure};

use super::NetConfig;
use super::count;

/// How far a generated student's multiply-accumulates may be from the budget.
pub const TOLERANCE: f64 = 0.05;

/// Maxout pieces of every conv layer of the sweep's students.
pub const PIECES: usize = 2;

/// What to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StudentSpec {
    /// Conv layers, at least 3 (one per stage).
    pub depth: usize,
    /// Multiply-accumulates per image.
    pub budget_macs: u64,
    /// `[height, width, channels]`.
    pub input: [usize; 3],
    pub classes: usize,
    /// Maxout pieces of every conv layer (1: plain convs, no activation between them).
    pub pieces: usize,
    /// Conv layers of each of the three stages: where the two poolings go. Sums to
    /// `depth`, every stage at least one.
    pub split: [usize; 3],
}

impl StudentSpec {
    /// The sweep's student: [`PIECES`] pieces, layers split by [`stages`].
    pub fn sweep(depth: usize, budget_macs: u64, input: [usize; 3], classes: usize) -> StudentSpec {
        StudentSpec { depth, budget_macs, input, classes, pieces: PIECES, split: stages(depth) }
    }
}

/// Conv layers per stage.
pub fn stages(depth: usize) -> [usize; 3] {
    let base = depth / 3;
    let extra = depth % 3;
    // The remainder goes to the later stages, where a layer costs a quarter or less.
    [base, base + usize::from(extra >= 2), base + usize::from(extra >= 1)]
}

/// The TOML of a student with these per-layer widths (units).
fn toml(spec: &StudentSpec, widths: &[usize]) -> String {
    let [h, w, c] = spec.input;
    let mut text = String::new();
    let _ = writeln!(text, "name = \"{}\"", name(spec));
    let _ = writeln!(text, "input = [{h}, {w}, {c}]");
    let _ = writeln!(text, "classes = {}", spec.classes);
    let _ = writeln!(text, "guided = \"pool2\"");
    let units: Vec<String> = widths.iter().map(usize::to_string).collect();
    let _ = writeln!(
        text,
        "notes = \"\"\"\nGenerated: {} maxout conv layers of {} units ({} pieces, 3x3, \
         padded 1) in stages of {:?} separated by 2x2/2 max pooling, then softmax; \
         {} multiply-accumulates per image targeted.\n\"\"\"",
        spec.depth,
        units.join("-"),
        spec.pieces,
        spec.split,
        spec.budget_macs
    );
    let mut layer = 0;
    for (stage, count) in spec.split.into_iter().enumerate() {
        for _ in 0..count {
            let _ = writeln!(
                text,
                "\n[[layers]]\ntype = \"conv\"\nname = \"conv{}\"\nunits = {}\npieces = {}\nkernel = 3\npadding = 1",
                layer + 1,
                widths[layer],
                spec.pieces
            );
            if spec.pieces == 1 {
                text += "activation = \"relu\"\n";
            }
            layer += 1;
        }
        if stage < 2 {
            let _ = writeln!(text, "\n[[layers]]\ntype = \"max_pool\"\nname = \"pool{}\"\nkernel = 2", stage + 1);
        }
    }
    let _ = writeln!(text, "\n[[layers]]\ntype = \"dense\"\nname = \"logits\"\nunits = {}", spec.classes);
    text
}

/// The network's name: the sweep's keeps its old form, others say pieces and split.
fn name(spec: &StudentSpec) -> String {
    if spec.pieces == PIECES && spec.split == stages(spec.depth) {
        format!("sweep-depth{}", spec.depth)
    } else {
        let [a, b, c] = spec.split;
        format!("student-{a}-{b}-{c}-p{}", spec.pieces)
    }
}

fn macs(spec: &StudentSpec, widths: &[usize]) -> anyhow::Result<u64> {
    Ok(count::totals(&NetConfig::parse(&toml(spec, widths))?)?.1)
}

/// A student for `spec` and its TOML text.
pub fn student(spec: &StudentSpec) -> anyhow::Result<(NetConfig, String)> {
    ensure!(spec.depth >= 3, "a generated student needs at least 3 conv layers (one per stage), not {}", spec.depth);
    ensure!(
        spec.split.iter().sum::<usize>() == spec.depth && spec.split.iter().all(|&n| n >= 1),
        "the stages {:?} must hold the {} conv layers, at least one each",
        spec.split,
        spec.depth
    );
    ensure!((1..=4).contains(&spec.pieces), "maxout pieces must be 1 to 4, not {}", spec.pieces);
    ensure!(
        spec.input[0] >= 4 && spec.input[1] >= 4,
        "inputs of at least 4x4 are needed for two 2x2 poolings, not {}x{}",
        spec.input[0],
        spec.input[1]
    );
    let fits = |widths: &[usize]| -> anyhow::Result<bool> { Ok(macs(spec, widths)? <= spec.budget_macs) };
    // The widest common width within the budget (MACs grow with the width).
    let mut width = 1;
    if !fits(&vec![1; spec.depth])? {
        bail!(
            "{} multiply-accumulates cannot hold {} layers even one unit wide ({} needed)",
            spec.budget_macs,
            spec.depth,
            macs(spec, &vec![1; spec.depth])?
        );
    }
    while fits(&vec![width * 2; spec.depth])? {
        width *= 2;
    }
    let (mut lo, mut hi) = (width, width * 2);
    while hi - lo > 1 {
        let mid = (lo + hi) / 2;
        if fits(&vec![mid; spec.depth])? { lo = mid } else { hi = mid }
    }
    let mut widths = vec![lo; spec.depth];
    // One more unit for single layers, last first, while the budget holds.
    let mut grew = true;
    while grew {
        grew = false;
        for i in (0..spec.depth).rev() {
            widths[i] += 1;
            if fits(&widths)? {
                grew = true;
            } else {
                widths[i] -= 1;
            }
        }
    }
    let total = macs(spec, &widths)?;
    let off = (total as f64 - spec.budget_macs as f64).abs() / spec.budget_macs as f64;
    ensure!(
        off <= TOLERANCE,
        "a {}-layer student costs {total} multiply-accumulates, {:.1}% from the budget of {}",
        spec.depth,
        100.0 * off,
        spec.budget_macs
    );
    let text = toml(spec, &widths);
    Ok((NetConfig::parse(&text)?, text))
}

//! The figures per stage: the teacher and each student in float32, the student as an
//! int8 blob; parameters, MACs, bytes, accuracy, and what each saves against the teacher.

use anyhow::Context as _;
use fitnets_shared::Model;

use super::runs::Run;
use crate::inspect;

/// Bytes of one float32 parameter.
pub const FLOAT32_BYTES: u64 = 4;

/// How a stage stores its weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    Float32,
    Int8,
}

/// The int8 student the report describes.
#[derive(Clone, Debug)]
pub struct Int8Student {
    /// The blob, as written by `fitnets export`.
    pub blob: Vec<u8>,
    /// Where it came from, in words.
    pub source: String,
    /// The run it was exported from, when known: its float accuracy is the reference
    /// for the quantization drop.
    pub run: Option<String>,
    /// Test accuracy with `shared`'s kernels, and on how many images.
    pub accuracy: Option<(f64, usize)>,
}

/// One row of the stage table.
#[derive(Clone, Debug, PartialEq)]
pub struct Stage {
    pub label: String,
    /// The run (`teacher`, `kd`, …) or, for the int8 row, the run it came from if known.
    pub run: Option<String>,
    pub precision: Precision,
    pub params: u64,
    pub macs: u64,
    /// Float32: [`FLOAT32_BYTES`] per parameter; int8: the whole blob (weights, biases,
    /// requantization, header, labels and checksum).
    pub model_bytes: u64,
    /// Test accuracy, `None` while a run has not finished.
    pub accuracy: Option<f64>,
    /// Test images behind `accuracy`.
    pub test_images: Option<usize>,
}

/// A stage against the teacher: how many times smaller and cheaper.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Savings {
    /// Teacher parameters / stage parameters.
    pub params: f64,
    /// Teacher float32 bytes / stage model bytes.
    pub bytes: f64,
    /// Teacher MACs / stage MACs.
    pub speed_up: f64,
}

impl Stage {
    /// What this stage saves against `teacher`.
    pub fn savings(&self, teacher: &Stage) -> Savings {
        let ratio = |a: u64, b: u64| if b == 0 { f64::INFINITY } else { a as f64 / b as f64 };
        Savings {
            params: ratio(teacher.params, self.params),
            bytes: ratio(teacher.model_bytes, self.model_bytes),
            speed_up: ratio(teacher.macs, self.macs),
        }
    }
}

/// The rows: every run in float32 (teacher first), then the int8 student.
pub fn stages(runs: &[Run], int8: &Int8Student) -> anyhow::Result<Vec<Stage>> {
    let mut rows = Vec::with_capacity(runs.len() + 1);
    for run in runs {
        let (params, macs) =
            run.info.cost().with_context(|| format!("counting the network of {}", run.dir.display()))?;
        rows.push(Stage {
            label: run.label(),
            run: Some(run.name.clone()),
            precision: Precision::Float32,
            params,
            macs,
            model_bytes: params * FLOAT32_BYTES,
            accuracy: run.result.as_ref().map(|r| r.test_accuracy),
            test_images: run.result.as_ref().map(|_| run.info.data.test_images),
        });
    }
    let model = Model::from_bytes(&int8.blob).context("the int8 blob is not a valid model")?;
    let layers = inspect::layers(&model)?;
    rows.push(Stage {
        label: "FitNet int8".into(),
        run: int8.run.clone(),
        precision: Precision::Int8,
        params: layers.iter().map(|l| l.params).sum(),
        macs: layers.iter().map(|l| l.macs).sum(),
        model_bytes: int8.blob.len() as u64,
        accuracy: int8.accuracy.map(|(a, _)| a),
        test_images: int8.accuracy.map(|(_, n)| n),
    });
    Ok(rows)
}

/// The teacher's row, if the runs include a teacher.
pub fn teacher(rows: &[Stage]) -> Option<&Stage> {
    rows.iter().find(|r| r.run.as_deref() == Some("teacher") && r.precision == Precision::Float32)
}

/// The int8 accuracy less the float accuracy of the run it was exported from, in
/// percentage points, when both are known.
pub fn quantization_drop(rows: &[Stage]) -> Option<f64> {
    let int8 = rows.iter().find(|r| r.precision == Precision::Int8)?;
    let float = rows.iter().find(|r| r.precision == Precision::Float32 && r.run.is_some() && r.run == int8.run)?;
    Some(100.0 * (int8.accuracy? - float.accuracy?))
}

/// Differences in test accuracy smaller than this are within the spread of one run per
/// method: one method's runs varied by up to 0.35 pp (standard deviation over seeds) on
/// Fashion-MNIST (docs/experiments.md), so the difference of two single runs varies by
/// about 0.5 pp.
const NOISE: f64 = 0.005;

/// One plain sentence of what distillation bought, from the stages: the students with
/// hints and KD against the same student from scratch (each one run, so a difference
/// under about half a point may be noise), and the int8 student against the teacher.
/// `None` until the teacher, the scratch student and the int8 student are measured.
pub fn bought(rows: &[Stage]) -> Option<String> {
    let float =
        |run: &str| rows.iter().find(|r| r.run.as_deref() == Some(run) && r.precision == Precision::Float32)?.accuracy;
    let teacher = teacher(rows)?;
    let scratch = float("scratch")?;
    let int8 = rows.iter().find(|r| r.precision == Precision::Int8)?;
    let int8_accuracy = int8.accuracy?;
    let savings = int8.savings(teacher);
    let pct = |a: f64| format!("{:.2}%", 100.0 * a);
    let mut methods = Vec::new();
    for (run, name) in [("hints", "hints"), ("kd", "knowledge distillation")] {
        if let Some(a) = float(run) {
            methods.push(format!("with {name} {} ({:+.2} pp)", pct(a), 100.0 * (a - scratch)));
        }
    }
    let verdict = match [float("hints"), float("kd")].into_iter().flatten().reduce(f64::max) {
        // One run each: a gap this small is within what another seed moves.
        Some(best) if (best - scratch).abs() < NOISE => {
            "distillation and training from scratch tied, within \
             the noise of one run each"
        }
        Some(best) if best > scratch => "distillation beat training from scratch",
        Some(_) => "distillation did not beat training from scratch",
        None => "no distilled student has finished",
    };
    Some(format!(
        "Here {verdict}: the same student scores {} from scratch, {}; the int8 student{} has {:.0}x fewer \
         parameters and {:.0}x fewer bytes than the teacher ({}) and scores {} on the test images.",
        pct(scratch),
        if methods.is_empty() { "nothing else yet".to_string() } else { methods.join(", ") },
        int8.run.as_ref().map_or(String::new(), |r| format!(" (from {r})")),
        savings.params,
        savings.bytes,
        teacher.accuracy.map_or("not finished".into(), pct),
        pct(int8_accuracy)
    ))
}

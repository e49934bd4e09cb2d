//! What a run directory records: `run.json` (`RunInfo`, the data's `DataInfo`, its
//! format and how a config is stored in it), `result.json` (`RunResult`), and the final
//! model (`save_net`, `load_run`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, ensure};
use burn::module::Module;
use burn::record::{BinFileRecorder, FullPrecisionSettings};
use burn::tensor::backend::Backend;
use serde::{Deserialize, Serialize};

use crate::data::Normalization;
use crate::method::{KdSettings, Method};
use crate::model::{Net, NetConfig, Views, count};
use crate::run::dir::RunDir;
use crate::train::phase::EpochMetrics;
use crate::train::schedule::Schedule;

/// Where the images came from and how they were split and normalized.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DataInfo {
    /// The data set: its folder's name, `cifar10`, or `--name`.
    pub name: String,
    /// SHA-256 of the files read ([`crate::data::content_hash`]); absent in runs made
    /// before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    pub train_images: usize,
    pub valid_images: usize,
    pub test_images: usize,
    pub split_seed: u64,
    pub normalization: Normalization,
    /// The class names in label order: the folder names of an image folder,
    /// Fashion-MNIST's or CIFAR-10's; empty where the data names none (plain IDX).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
    /// How an image folder's files became the images; absent for IDX and CIFAR-10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images: Option<ImageInfo>,
    /// SHA-256 of the whole training set as the network sees it (shape, labels and
    /// pixels, before the split; [`crate::data::pixels_hash`]): two runs with the same
    /// one saw the same data, whatever the files' format. Absent in older runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pixels_hash: Option<String>,
}

/// How an image folder was converted to a network's input (its size and channels are
/// the config's).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageInfo {
    #[serde(with = "resize_name")]
    pub resize: fitnets_images::Resize,
    /// Bad files skipped with `--skip-bad`.
    #[serde(default)]
    pub skipped: usize,
}

/// A resize mode in `run.json`: its name.
mod resize_name {
    use fitnets_images::Resize;
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(resize: &Resize, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(resize.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Resize, D::Error> {
        String::deserialize(deserializer)?.parse().map_err(D::Error::custom)
    }
}

/// The layout of `run.json` and `model.bin` this fitnets writes. Runs without the field
/// are format 1 (they read the same); a run of a later format was written by a newer
/// fitnets and is refused ([`RunInfo::format`]).
pub const RUN_FORMAT: u32 = 2;

/// Everything needed to understand, resume or reuse a run: saved as `run.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    /// [`RUN_FORMAT`] when written; refused when newer than this fitnets reads.
    #[serde(default = "first_format", deserialize_with = "known_format")]
    pub format: u32,
    /// `teacher` or `student`.
    pub role: String,
    pub method: Option<Method>,
    /// Kept as its TOML text (see [`config_text`]).
    #[serde(with = "config_text")]
    pub config: NetConfig,
    pub schedule: Schedule,
    /// Hint training (stage 1) of the `hints` method.
    pub hint_schedule: Option<Schedule>,
    pub kd: Option<KdSettings>,
    pub teacher: Option<PathBuf>,
    /// The views the teacher averaged when this student distilled from it (absent for
    /// runs that predate the field and for students without a teacher). Views can be
    /// added to a finished teacher, after which its logits are not the ones this student
    /// learned from: resuming or reusing the student is then refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teacher_views: Option<Views>,
    pub data: DataInfo,
    pub backend: String,
    /// The network classifies by [`Net::predict`] with flip averaging: evaluation and the
    /// logits a student distils from average each image with its mirror image. (The
    /// per-epoch validation of `metrics.csv` stays the plain network's, as trained.)
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flip_average: bool,
    /// As `flip_average`, over each image and its four one-pixel shifts (with their mirror
    /// images as well when both are set).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub shift_average: bool,
}

/// The format of runs written before `format` was recorded.
fn first_format() -> u32 {
    1
}

/// A run format this fitnets reads, or an error that says to update fitnets.
fn known_format<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<u32, D::Error> {
    let format = u32::deserialize(deserializer)?;
    if format > RUN_FORMAT {
        return Err(serde::de::Error::custom(format!(
            "the run was written by a newer fitnets (run format {format}; this one reads formats 1 to \
             {RUN_FORMAT}): use that version, or train the run again with this one"
        )));
    }
    Ok(format)
}

impl RunInfo {
    /// How tables name the run: `teacher (mnist-teacher)`, `teacher (mnist-teacher,
    /// flip-averaged)` when its accuracy is flip-averaged, `FitNet hints`.
    pub fn label(&self) -> String {
        match self.method {
            Some(method) => format!("FitNet {}", method.name()),
            None => format!("teacher ({})", self.network_name()),
        }
    }

    /// The views of an image whose logits the network averages to classify it.
    pub fn views(&self) -> Views {
        Views { mirror: self.flip_average, shift: self.shift_average }
    }

    /// `(parameters, MACs)` of one classification as the run classifies: averaging over
    /// views runs the network once per view.
    pub fn cost(&self) -> anyhow::Result<(u64, u64)> {
        let (params, macs) = count::totals(&self.config)?;
        Ok((params, self.views().count() as u64 * macs))
    }

    /// The config's name, with `, flip-averaged` (or how else it averages views) when
    /// the run classifies so.
    pub fn network_name(&self) -> String {
        match self.views().label() {
            Some(label) => format!("{}, {label}", self.config.name),
            None => self.config.name.clone(),
        }
    }
}

/// A config inside `run.json` is stored as its TOML text, the format it was written in.
///
/// Its layers are an internally tagged enum, and serde reads those through a buffer in
/// which serde_json, once any crate of a build enables its `arbitrary_precision` feature
/// (xtask's defmt decoder does, and cargo unifies features across a workspace build),
/// hands over numbers as maps: a dropout's `p` then fails to parse. TOML has no such
/// mode. Runs written before this change, with the config as a JSON object, still read.
pub mod config_text {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::model::NetConfig;

    pub fn serialize<S: Serializer>(config: &NetConfig, serializer: S) -> Result<S::Ok, S::Error> {
        let text = toml::to_string(config).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<NetConfig, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(text) => NetConfig::parse(&text).map_err(serde::de::Error::custom),
            // An older run: the config as a JSON object, converted value by value (no
            // tagged-enum buffering of JSON numbers on the way).
            object => toml_value(object)
                .ok_or_else(|| serde::de::Error::custom("a config must be a TOML string or an object"))?
                .try_into()
                .map_err(serde::de::Error::custom),
        }
    }

    /// `value` as TOML; `None` for `null` (an absent optional field).
    fn toml_value(value: serde_json::Value) -> Option<toml::Value> {
        use serde_json::Value as J;
        Some(match value {
            J::Null => return None,
            J::Bool(b) => toml::Value::Boolean(b),
            J::Number(n) => match n.as_i64() {
                Some(i) => toml::Value::Integer(i),
                None => toml::Value::Float(n.as_f64()?),
            },
            J::String(s) => toml::Value::String(s),
            J::Array(items) => toml::Value::Array(items.into_iter().filter_map(toml_value).collect()),
            J::Object(map) => {
                toml::Value::Table(map.into_iter().filter_map(|(k, v)| Some((k, toml_value(v)?))).collect())
            }
        })
    }
}

/// The outcome of a run: saved as `result.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub params: u64,
    /// MACs of one classification as `test_accuracy` was measured ([`RunInfo::cost`]).
    pub macs: u64,
    pub valid_accuracy: f64,
    pub test_accuracy: f64,
    /// `confusion[true][predicted]` on the test set.
    pub confusion: Vec<Vec<u64>>,
    pub hint_history: Vec<EpochMetrics>,
    pub history: Vec<EpochMetrics>,
    /// Training time summed over every epoch of both phases, resumed runs included
    /// (loading and evaluation left out).
    pub train_seconds: f64,
}

impl DataInfo {
    /// Whether two runs saw the same data set: the same content hash (when both recorded
    /// one; else the same name), split, counts and normalization.
    pub fn same_data(&self, other: &DataInfo) -> bool {
        self.same_set(other)
            && self.train_images == other.train_images
            && self.valid_images == other.valid_images
            && self.test_images == other.test_images
            && self.split_seed == other.split_seed
            && self.normalization == other.normalization
    }

    /// Whether two runs saw the same data set: by the hash of the training pixels when
    /// both recorded one (an IDX set and its images written out as PNG files are the
    /// same set), else by the files' content hash when both have one, else by name.
    pub fn same_set(&self, other: &DataInfo) -> bool {
        if let (Some(a), Some(b)) = (&self.pixels_hash, &other.pixels_hash) {
            return a == b;
        }
        match (&self.content_hash, &other.content_hash) {
            (Some(a), Some(b)) => a == b,
            _ => crate::data::base_name(&self.name) == crate::data::base_name(&other.name),
        }
    }

    /// The name and the first 12 digits of the hash: `fashion-mnist (sha256 3f2a…)`.
    pub fn describe(&self) -> String {
        let name = crate::data::base_name(&self.name);
        let mut text = match &self.content_hash {
            Some(hash) => format!("{name} (sha256 {}…)", &hash[..hash.len().min(12)]),
            None => name,
        };
        if let Some(images) = &self.images {
            text += &format!(" as pictures with --resize {}", images.resize);
        }
        text
    }
}

type Recorder32 = BinFileRecorder<FullPrecisionSettings>;

/// The file a run's final model is saved in (without burn's `.bin` extension).
pub const MODEL_FILE: &str = "model";

/// Saves `net` as the run's final model.
pub fn save_net<B: Backend>(net: Net<B>, run: &RunDir) -> anyhow::Result<()> {
    let tmp = run.join("model-tmp");
    net.save_file(tmp.clone(), &Recorder32::new())?;
    std::fs::rename(tmp.with_extension("bin"), run.join("model.bin")).context("moving the final model into place")
}

/// Loads the final model of the run at `dir`, with its run information.
pub fn load_run<B: Backend>(dir: &Path, device: &B::Device) -> anyhow::Result<(Net<B>, RunInfo)> {
    let run = RunDir::open(dir)?;
    let info: RunInfo = run.read_json("run.json")?;
    let file = run.join("model.bin");
    ensure!(
        file.exists(),
        "{} has no final model (model.bin): the run did not finish; finish it with --resume",
        dir.display()
    );
    // `evaluate` classifies 512 images at a time.
    count::check_inference_memory(&info.config, 512)?;
    let net = Net::<B>::new(&info.config, device)?
        .load_file(run.join(MODEL_FILE), &Recorder32::new(), device)
        .map_err(|_| {
            anyhow::anyhow!(
                "{} cannot be decoded: it is damaged (truncated?) or does not hold the network of {}'s run.json; \
                 train the run again or restore the file",
                file.display(),
                dir.display()
            )
        })?;
    Ok((net, info))
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use crate::model::NetConfig;

    #[derive(Serialize, Deserialize)]
    struct Holder {
        #[serde(with = "super::config_text")]
        config: NetConfig,
    }

    const CONFIG: &str = r#"
        name = "d"
        input = [8, 8, 1]
        classes = 2
        [[layers]]
        type = "dropout"
        p = 0.25
        [[layers]]
        type = "conv"
        units = 2
        pieces = 2
        kernel = 3
        padding = "same"
        [[layers]]
        type = "dense"
        units = 2
    "#;

    #[test]
    fn configs_in_run_json_read_back_in_both_formats() {
        // A dropout's `p` inside the tagged layers is what broke under serde_json's
        // arbitrary_precision (enabled in workspace builds); `cargo test --workspace`
        // runs this with it.
        let config = NetConfig::parse(CONFIG).unwrap();
        let text = serde_json::to_string(&Holder { config: config.clone() }).unwrap();
        assert!(text.starts_with(r#"{"config":"name = "#), "{text}");
        assert_eq!(serde_json::from_str::<Holder>(&text).unwrap().config, config);
        // Runs written before: the config as a JSON object.
        let old = r#"{"config": {"name": "d", "input": [8, 8, 1], "classes": 2, "hint": null, "guided": null,
            "regressor": null, "notes": "", "layers": [{"type": "dropout", "name": null, "p": 0.25},
            {"type": "conv", "name": null, "units": 2, "pieces": 2, "kernel": 3, "stride": 1,
             "padding": "same", "activation": "none", "batch_norm": false},
            {"type": "dense", "name": null, "units": 2, "pieces": 1, "activation": "none"}]}}"#;
        assert_eq!(serde_json::from_str::<Holder>(old).unwrap().config, config);
    }
}

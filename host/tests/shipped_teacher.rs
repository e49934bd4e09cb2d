//! The teacher the repository ships (`teachers/fashion-mnist-cnn/`, see its README): it
//! loads with this version of fitnets, its record names the data it learned from, and
//! it classifies a sample of the Fashion-MNIST test set as well as its README says.
//!
//! Needs Debian's `dataset-fashion-mnist` for the accuracy check: without it the check
//! is skipped and says so, unless `FITNETS_REQUIRE_DATA` is set (`cargo xtask test`
//! installs the package and sets it), when a missing data set fails the test.

use std::path::{Path, PathBuf};

use burn::backend::Flex;
use fitnets::data::{self, Augment, FASHION_MNIST_DIR};
use fitnets::method::evaluate;
use fitnets::run::dir::RunDir;
use fitnets::run::{RUN_FORMAT, RunInfo};
use fitnets::train::batch::Batcher;

fn teacher_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../teachers/fashion-mnist-cnn")
}

/// Test images classified: enough to tell a 93 % teacher from a 90 % one.
const SAMPLE: usize = 1000;
/// The accuracy the sample must reach: the README's 93.2 % on all 10,000 test images,
/// less four standard errors of a 1,000-image sample (0.8 pp each).
const FLOOR: f64 = 0.90;

#[test]
fn the_shipped_teacher_loads_and_is_worth_learning_from() {
    let dir = teacher_dir();
    let info: RunInfo = RunDir::open(&dir).unwrap().read_json("run.json").unwrap();
    assert_eq!(info.role, "teacher");
    assert!(info.format <= RUN_FORMAT);
    assert_eq!(data::base_name(&info.data.name), "fashion-mnist");
    let hash = info.data.content_hash.clone().expect("the shipped teacher records its data's hash");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    assert!(readme.contains(&hash), "the README gives the data's content hash {hash}");
    let device = Default::default();
    let (net, info) = fitnets::run::load_run::<Flex>(&dir, &device).unwrap();

    let data_dir = Path::new(FASHION_MNIST_DIR);
    if !data_dir.join("t10k-images-idx3-ubyte.gz").is_file() {
        assert!(
            std::env::var_os("FITNETS_REQUIRE_DATA").is_none(),
            "{FASHION_MNIST_DIR} is missing: install the Debian package dataset-fashion-mnist"
        );
        println!("skipped the accuracy check: {FASHION_MNIST_DIR} not found (install dataset-fashion-mnist)");
        return;
    }
    let files = data::idx_files(data_dir).unwrap();
    assert_eq!(data::content_hash(&files).unwrap(), hash, "the installed Fashion-MNIST is the teacher's");
    let (train, test) = data::fashion_mnist(data_dir).unwrap();
    assert_eq!(
        info.data.pixels_hash.as_deref(),
        Some(data::pixels_hash(&train).as_str()),
        "the recorded pixels hash is that of the installed training set"
    );
    let sample = test.sample(SAMPLE, 1);
    info.config.check_data(&[&sample]).unwrap();
    let batcher = Batcher { normalization: info.data.normalization.clone(), augment: Augment::default() };
    let (accuracy, _) = evaluate(&net, &sample, &batcher, info.views(), &device);
    assert!(accuracy >= FLOOR, "{:.2} % on {SAMPLE} test images", 100.0 * accuracy);
}

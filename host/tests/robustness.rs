//! Property tests that look for the next panic: arbitrary configs (within and far beyond
//! every limit) through parsing, `info`'s counts, network construction and one training
//! epoch; arbitrary IDX bytes through the loader. Each must return `Ok` or a clean `Err`.

use burn::backend::{Autodiff, Flex};
use fitnets::data::Splits;
use fitnets::data::{Augment, Dataset, idx};
use fitnets::method::train_on_labels;
use fitnets::model::count::{self, Footprint};
use fitnets::model::{Net, NetConfig};
use fitnets::run::dir::RunDir;
use fitnets::train::schedule::{OptimizerKind, Schedule};
use proptest::prelude::*;

mod common;
use common::config;

type B = Autodiff<Flex>;

/// `n` random-ish images of the config's input with labels below `classes`.
fn data_for(config: &NetConfig, n: usize, seed: u64) -> Dataset {
    let [h, w, c] = config.input;
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    Dataset {
        images: (0..n * h * w * c).map(|_| next() as u8).collect(),
        labels: (0..n).map(|i| (i % config.classes) as u8).collect(),
        height: h,
        width: w,
        channels: c,
        classes: config.classes,
        name: "random".into(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 600, failure_persistence: None, ..ProptestConfig::default() })]

    /// Parsing, counting and sizing never panic, and what parses is within the limits.
    #[test]
    fn configs_parse_count_and_size_cleanly(text in config()) {
        if let Ok(config) = NetConfig::parse(&text) {
            let (params, macs) = count::totals(&config).unwrap();
            prop_assert!(params <= fitnets::model::config::limits::MAX_PARAMS);
            prop_assert!(macs <= fitnets::model::config::limits::MAX_MACS);
            let footprint = Footprint::of(&config).unwrap();
            let _ = footprint.training_bytes(usize::MAX);
            let _ = count::check_memory(&config, 128);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    /// A config that parses, and is small enough to train here, builds and trains one
    /// epoch on matching data, or fails cleanly; data that does not match is refused.
    #[test]
    fn accepted_small_configs_build_and_train(text in config(), seed in any::<u64>()) {
        let Ok(config) = NetConfig::parse(&text) else { return Ok(()) };
        let footprint = Footprint::of(&config).unwrap();
        prop_assume!(footprint.training_bytes(4) < 64 << 20 && count::totals(&config).unwrap().1 < 2_000_000);
        let train = data_for(&config, 24, seed);
        let test = data_for(&config, 6, seed ^ 1);
        config.check_data(&[&train, &test]).unwrap();
        let splits = Splits::new(&train, test, 6, 1, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::create(dir.path()).unwrap();
        let schedule = Schedule {
            epochs: 1,
            batch_size: 4,
            optimizer: OptimizerKind::Adam,
            learning_rate: 1e-3,
            final_learning_rate: 0.0,
            seed,
            augment: Augment::default(),
        };
        let device = Default::default();
        let _ = Net::<Flex>::new(&config, &device).unwrap();
        let _ = train_on_labels::<B>(&config, &splits, &schedule, &run, "teacher", &fitnets::train::workers::Workers::one(device));
        // Data of another shape or with a label out of range is refused, not trained on.
        let mut other = data_for(&config, 4, seed);
        other.width += 1;
        prop_assert!(config.check_data(&[&other]).is_err());
        if config.classes < 256 {
            let mut other = data_for(&config, 4, seed);
            other.labels[0] = config.classes as u8;
            prop_assert!(config.check_data(&[&other]).is_err());
        }
    }

    /// Any bytes as an IDX file: a clean error or a well-formed set.
    #[test]
    fn idx_bytes_load_cleanly(bytes in prop::collection::vec(any::<u8>(), 0..64), header in 0usize..5) {
        // Half the cases start from a plausible header, so the parser gets past the magic.
        let mut data = match header {
            0 | 1 => bytes,
            rank => {
                let mut data = vec![0, 0, 8, rank as u8];
                data.extend(bytes);
                data
            }
        };
        data.truncate(80);
        let dir = tempfile::tempdir().unwrap();
        let (images, labels) = (dir.path().join("images"), dir.path().join("labels"));
        std::fs::write(&images, &data).unwrap();
        std::fs::write(&labels, &data).unwrap();
        if let Ok(idx) = idx::read_idx(&images) {
            prop_assert_eq!(idx.data.len(), idx.dims.iter().product::<usize>());
        }
        if let Ok(set) = idx::load_idx(&images, &labels, "fuzz") {
            prop_assert_eq!(set.images.len(), set.len() * set.image_len());
            prop_assert!(set.labels.iter().all(|&l| usize::from(l) < set.classes));
        }
    }
}

//! Golden bytes: the encoding of a fixed model must not change by accident.
//!
//! If a layout change is intended, bump `format::VERSION` and re-bless with
//! `FITNETS_BLESS=1 cargo test -p fitnets-tests --test golden`.

use std::path::PathBuf;

use fitnets_shared::format::encode::encode;
use fitnets_shared::{Model, plan};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

#[test]
fn tiny_model_bytes_are_stable() {
    let blob = encode(&fitnets_tests::tiny(1)).expect("tiny model encodes");
    let path = fixture("tiny.fnet");
    if std::env::var_os("FITNETS_BLESS").is_some() {
        std::fs::write(&path, &blob).unwrap();
    }
    let golden = std::fs::read(&path).expect("tests/fixtures/tiny.fnet exists");
    assert!(blob == golden, "encoding of the tiny model changed ({} bytes now, {} golden)", blob.len(), golden.len());
    let model = Model::from_bytes(&golden).unwrap();
    assert_eq!(model.name(), "tiny");
    assert_eq!(model.classes(), 3);
    assert_eq!(model.layer_count(), 8);
    assert_eq!(model.labels().collect::<Vec<_>>(), ["class0", "class1", "class2"]);
    // The conv kernel's scratch: 32 bytes of constants per conv channel, the weights
    // padded to whole runs of 4 when the window is not, then one chunk of 4 packed
    // columns (8 words per run of 4 values), plus 3 bytes of alignment slack. The peak is
    // conv + maxout + pool from 8x8x1 to 4x4x4: 64 in, 8 channels of constants, 8 x 12
    // padded weights (a 3x3x1 window), 3 runs, 64 out; the 3x3 conv after it (4x4x4 in,
    // 6 channels and 9 runs of 3x3x4 values, 2x2x6 out) takes 571.
    assert_eq!(plan::arena_bytes(&model), 64 + (8 * 32 + 8 * 12 + 3 * 32 + 3) + 64);
}

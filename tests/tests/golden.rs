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
    // Conv + maxout + pool goes from 8x8x1 to 4x4x4 through 4 packed columns (64 + 83
    // + 64 bytes); the peak is the 3x3 conv after it: 4x4x4 in, two columns of 3x3x4
    // values (2 x 18 words + 3 bytes of alignment slack), 2x2x6 out.
    assert_eq!(plan::arena_bytes(&model), 64 + (2 * 18 * 4 + 3) + 24);
}

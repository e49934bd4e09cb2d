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
    // 8x8x1 input; conv+maxout writes 8x8x4: 64 + 256 bytes at once is the peak.
    assert_eq!(plan::arena_bytes(&model), 64 + 256);
}

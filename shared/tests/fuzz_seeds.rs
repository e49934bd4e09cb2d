//! The fuzzer's `decode_frame` seed corpus in `fuzz/seeds/decode_frame/` holds valid
//! messages, each as a whole frame (delimiter included, for the stream path) and as a
//! bare postcard payload (for the path that frames the input itself). This test checks
//! the files against `wire::encode` on every `cargo test` (the fuzz crate itself needs
//! nightly); regenerate them with `FITNETS_BLESS=1 cargo test -p fitnets-shared --test
//! fuzz_seeds`.

use std::path::PathBuf;

use fitnets_shared::wire::{self, ErrorCode, ModelInfo, PROTOCOL_VERSION, Request, Response};
use fitnets_shared::{Model, plan};

/// Each seed's file name and bytes.
fn seeds(tiny: &Model<'_>) -> Vec<(String, Vec<u8>)> {
    let pixels: Vec<u8> = (0..tiny.input_shape().len()).map(|i| (i * 4) as u8).collect();
    let logits = [(-3i8) as u8, 5, 2];
    let info = ModelInfo {
        protocol: PROTOCOL_VERSION,
        name: tiny.name(),
        input: tiny.input_shape(),
        classes: tiny.classes(),
        arena_bytes: plan::arena_bytes(tiny),
        model_crc: tiny.crc(),
    };
    let mut out = Vec::new();
    macro_rules! seed {
        ($name:literal, $message:expr) => {{
            let message = $message;
            let payload = postcard::to_stdvec(&message).unwrap();
            let mut buf = vec![0u8; wire::max_frame_len(payload.len())];
            let frame = wire::encode(&message, &mut buf).unwrap().to_vec();
            out.push((format!("{}.payload", $name), payload));
            out.push((format!("{}.frame", $name), frame));
        }};
    }
    seed!("request_info", Request::Info);
    seed!("request_classify", Request::Classify { pixels: &pixels });
    seed!("response_info", Response::Info(info));
    seed!("response_prediction", Response::Prediction { class: 1, logits: &logits });
    seed!("response_error", Response::Error(ErrorCode::InputLength));
    out
}

#[test]
fn frame_seeds_are_current() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let blob = std::fs::read(root.join("../tests/fixtures/tiny.fnet")).expect("tests/fixtures/tiny.fnet exists");
    let tiny = Model::from_bytes(&blob).expect("the fixture decodes");
    let dir = root.join("fuzz/seeds/decode_frame");
    let bless = std::env::var_os("FITNETS_BLESS").is_some();
    for (name, bytes) in seeds(&tiny) {
        let file = dir.join(name);
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&file, &bytes).unwrap();
        }
        let stored = std::fs::read(&file).unwrap_or_default();
        assert!(stored == bytes, "{} is stale: rerun with FITNETS_BLESS=1", file.display());
    }
}

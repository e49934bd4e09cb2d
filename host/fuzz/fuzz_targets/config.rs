//! Fuzzes network configs: any text through `NetConfig::parse` must give `Ok` or a clean
//! `Err`, never a panic or an abort. An accepted config must be within the limits, its
//! counts and memory footprint must not overflow, and when it is small it must build
//! and classify a batch of two images.
#![no_main]

use burn::backend::Flex;
use burn::tensor::Tensor;
use fitnets::model::config::limits;
use fitnets::model::count::{self, Footprint};
use fitnets::model::{Net, NetConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = NetConfig::parse(text) else { return };
    let (params, macs) = count::totals(&config).expect("an accepted config counts");
    assert!(params <= limits::MAX_PARAMS && macs <= limits::MAX_MACS);
    let footprint = Footprint::of(&config).expect("an accepted config has a footprint");
    let _ = footprint.training_bytes(usize::MAX);
    if footprint.training_bytes(2) > 16 << 20 || macs > 1_000_000 {
        return;
    }
    let device = Default::default();
    let net = Net::<Flex>::new(&config, &device).expect("an accepted config builds");
    let [h, w, c] = config.input;
    let logits = net.forward(Tensor::zeros([2, c, h, w], &device));
    assert_eq!(logits.dims(), [2, config.classes]);
});

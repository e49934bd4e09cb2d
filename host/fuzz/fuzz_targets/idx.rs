//! Fuzzes the IDX reader: any bytes, raw or behind a gzip header, must give a clean
//! error or a set whose sizes agree with its header, never a panic, an abort or an
//! allocation larger than the input promises.
#![no_main]

use std::io::Write as _;

use fitnets::data::idx;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("fitnets-fuzz-idx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (raw, gz) = (dir.join("raw"), dir.join("gz"));
    std::fs::write(&raw, data).unwrap();
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
    for path in [&raw, &gz] {
        if let Ok(file) = idx::read_idx(path) {
            assert_eq!(file.data.len(), file.dims.iter().product::<usize>());
        }
        if let Ok(set) = idx::load_idx(path, path, "fuzz") {
            assert_eq!(set.images.len(), set.len() * set.image_len());
            assert!(set.labels.iter().all(|&l| usize::from(l) < set.classes));
        }
    }
});

//! Times loading an image folder: the first load (the cache removed: read, hash and
//! decode every file, write the cache) and a load from the cache, alternated.
//!
//! `cargo run --release -p fitnets-images --example load_bench -- DIR [ROUNDS] [HxWxC]`
//! (default 3 rounds, 28x28x1).

use std::path::Path;
use std::time::Instant;

use fitnets_images::{Conversion, Options, Resize, Source, cache, load};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = Path::new(args.first().map(String::as_str).unwrap_or("."));
    let rounds: usize = args.get(1).map(|r| r.parse()).transpose()?.unwrap_or(3);
    let shape: Vec<usize> =
        args.get(2).map(String::as_str).unwrap_or("28x28x1").split('x').map(str::parse).collect::<Result<_, _>>()?;
    anyhow::ensure!(shape.len() == 3, "the shape is HxWxC");
    let conversion = Conversion::new([shape[0], shape[1], shape[2]], Resize::Stretch).map_err(anyhow::Error::msg)?;
    let options = Options { conversion, skip_bad: false, cache: true };
    println!("{} on {} threads, {conversion}", dir.display(), rayon::current_num_threads());
    for round in 1..=rounds {
        let _ = std::fs::remove_dir_all(dir.join(cache::CACHE_DIR));
        let started = Instant::now();
        let first = load(dir, &options)?;
        let cold = started.elapsed().as_secs_f64();
        anyhow::ensure!(matches!(first.source, Source::Decoded { cached: Ok(_) }), "{:?}", first.source);
        let started = Instant::now();
        let again = load(dir, &options)?;
        let warm = started.elapsed().as_secs_f64();
        anyhow::ensure!(matches!(again.source, Source::Cache(_)), "{:?}", again.source);
        anyhow::ensure!(again.train == first.train && again.test == first.test);
        let images = first.train.labels.len() + first.test.labels.len();
        println!("round {round}: {images} images, first load {cold:.2} s, from the cache {warm:.2} s");
    }
    Ok(())
}

//! `fitnets info`: parameters and multiply-accumulates per layer of a run or a config.

use std::path::Path;

use crate::model::{NetConfig, count};
use crate::run::RunInfo;
use crate::run::describe_split;
use crate::run::dir::RunDir;

/// `fitnets info RUN|CONFIG`: parameters and MACs per layer.
pub fn info(target: &Path) -> anyhow::Result<String> {
    let (config, data) = if target.is_dir() {
        let info = RunDir::open(target)?.read_json::<RunInfo>("run.json")?;
        (info.config, Some(info.data))
    } else {
        (NetConfig::load(target)?, None)
    };
    let costs = count::layers(&config)?;
    let mut text = format!(
        "{} on {}x{}x{} inputs (HxWxC), {} classes\n",
        config.name, config.input[0], config.input[1], config.input[2], config.classes
    );
    text += &format!("{:<10} {:<9} {:>12} {:>10} {:>12}\n", "layer", "kind", "out (HxWxC)", "params", "MACs");
    for c in &costs {
        let shape = format!("{}x{}x{}", c.output[1], c.output[2], c.output[0]);
        text += &format!("{:<10} {:<9} {:>12} {:>10} {:>12}\n", c.name, c.kind, shape, c.params, c.macs);
    }
    let (params, macs) = count::totals(&config)?;
    text += &format!("{:<10} {:<9} {:>12} {:>10} {:>12}\n", "total", "", "", params, macs);
    if let Some(data) = data {
        text += &format!("data: {}\n", describe_split(&data));
        if !data.classes.is_empty() {
            text += &format!("classes: {}\n", data.classes.join(", "));
        }
        if let Some(images) = &data.images {
            text += &format!(
                "pictures from an image folder, converted with --resize {} ({} bad files skipped)\n",
                images.resize, images.skipped
            );
        }
    }
    Ok(text)
}

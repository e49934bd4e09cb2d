//! Self-test: runs the embedded model on the test images of [`crate::images`] and checks
//! every logit against what the host computed at build time (the invariant "host int8
//! results equal device results bit for bit"). Needs no peripheral.

use fitnets_shared::Model;

use crate::{images, model, stack};

/// Exit code when every image matches.
pub const PASS: i32 = 0;
/// Exit code when some image does not.
pub const FAIL: i32 = 1;

/// Runs every test image, logs each result and a summary, and returns the exit code.
/// `pixels` holds one image ([`model::INPUT_BYTES`]).
pub fn run(model: &Model<'_>, arena: &mut [u8], pixels: &mut [u8]) -> i32 {
    let mut matching = 0;
    for (index, expected) in model::EXPECTED.iter().enumerate() {
        images::fill(index as u32, pixels);
        let prediction = match fitnets_shared::run(model, pixels, arena) {
            Ok(prediction) => prediction,
            Err(e) => {
                defmt::error!("image {=usize}: {}", index, e);
                continue;
            }
        };
        let label = model.label(prediction.class).unwrap_or("?");
        if prediction.class == expected.class && prediction.logits == expected.logits {
            matching += 1;
            defmt::info!(
                "image {=usize}: class {=u16} ({=str}), logits {} match",
                index,
                prediction.class,
                label,
                prediction.logits
            );
        } else {
            defmt::error!("image {=usize}: class {=u16} ({=str}), logits MISMATCH", index, prediction.class, label);
            defmt::error!("  device {} class {=u16}", prediction.logits, prediction.class);
            defmt::error!("  host   {} class {=u16}", expected.logits, expected.class);
        }
    }
    let total = model::EXPECTED.len();
    defmt::info!("stack: {=usize} bytes at most", stack::peak_bytes());
    if matching == total {
        defmt::info!("selftest passed: {=usize} of {=usize} images match the host bit for bit", matching, total);
        PASS
    } else {
        defmt::error!("selftest FAILED: {=usize} of {=usize} images match the host bit for bit", matching, total);
        FAIL
    }
}

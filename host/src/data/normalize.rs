//! Per-channel standardization of pixels, measured once on the training set.

use serde::{Deserialize, Serialize};

use super::Dataset;

/// Per-channel mean and standard deviation of `pixel / 255` over a data set. Each run
/// records the one it trained with, so that inference and quantization use the same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// One mean per channel, in `[0, 1]`.
    pub mean: Vec<f32>,
    /// One population standard deviation per channel; a channel that never varies gets
    /// 1, so that it is only centred instead of divided by zero.
    pub std: Vec<f32>,
}

impl Normalization {
    /// Measures `data`. An empty set gives mean 0 and std 1 on every channel.
    pub fn of(data: &Dataset) -> Normalization {
        let c = data.channels;
        // Counting values is exact and fast; the moments follow from the histogram.
        let mut counts = vec![[0u64; 256]; c];
        for pixel in data.images.chunks_exact(c.max(1)) {
            for (hist, &v) in counts.iter_mut().zip(pixel) {
                hist[usize::from(v)] += 1;
            }
        }
        let (mut mean, mut std) = (Vec::with_capacity(c), Vec::with_capacity(c));
        for hist in &counts {
            let n: u64 = hist.iter().sum();
            if n == 0 {
                mean.push(0.0);
                std.push(1.0);
                continue;
            }
            let n = n as f64;
            let m = hist.iter().enumerate().map(|(v, &k)| v as f64 * k as f64).sum::<f64>() / n;
            let var = hist.iter().enumerate().map(|(v, &k)| (v as f64 - m).powi(2) * k as f64).sum::<f64>() / n;
            let s = var.sqrt() / 255.0;
            mean.push((m / 255.0) as f32);
            std.push(if s > 0.0 { s as f32 } else { 1.0 });
        }
        Normalization { mean, std }
    }

    /// The normalized value of a zero pixel, per channel: what a shift moves into an image
    /// from outside it.
    pub fn background(&self) -> Vec<f32> {
        self.mean.iter().zip(&self.std).map(|(&mean, &std)| -mean / std).collect()
    }

    /// Writes `(image / 255 - mean) / std` into `out` channel-major (CHW), ready for
    /// burn's NCHW tensors; `image` is one NHWC image with `channels` channels.
    ///
    /// Panics if `channels` differs from the number of channels measured or if `image`
    /// and `out` differ in length or are not a whole number of pixels: these are bugs in
    /// the caller, not faults in the data.
    pub fn apply(&self, image: &[u8], channels: usize, out: &mut [f32]) {
        assert!(channels > 0, "an image has at least one channel");
        assert_eq!(channels, self.mean.len(), "normalization measured {} channels", self.mean.len());
        assert_eq!(image.len(), out.len(), "image and output lengths differ");
        assert_eq!(image.len() % channels, 0, "image length is not a whole number of pixels");
        let plane = image.len() / channels;
        for (ch, (&mean, &std)) in self.mean.iter().zip(&self.std).enumerate() {
            let scale = 1.0 / (255.0 * std);
            let offset = -mean / std;
            let dst = &mut out[ch * plane..(ch + 1) * plane];
            for (o, &v) in dst.iter_mut().zip(image[ch..].iter().step_by(channels)) {
                *o = f32::from(v) * scale + offset;
            }
        }
    }
}

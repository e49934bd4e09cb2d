//! 2-D max pooling over plain `f32` slices, NCHW: forward keeps, for every output, the
//! position of the input it took; backward sends each output gradient there.
//!
//! Padding never wins (it is `-∞`). Output sizes follow burn's rule (in ceil mode a
//! last partial window counts); a geometry where a window would hold only padding is
//! refused.

use rayon::prelude::*;

/// The shape of a max pooling over one channel plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Input height and width.
    pub input: [usize; 2],
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zeros (here: `-∞`) on each side, `[vertical, horizontal]`.
    pub padding: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
}

impl PoolGeometry {
    /// The geometry of a pooling over `input` (`[H, W]`); `None` when no window fits, the
    /// padding is more than half the kernel, or a window would hold only padding.
    pub fn new(
        input: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        ceil: bool,
    ) -> Option<PoolGeometry> {
        let span = |axis: usize| {
            let (size, k, s, p) = (input[axis], kernel[axis], stride[axis], padding[axis]);
            if k == 0 || s == 0 || 2 * p > k || size + 2 * p < k {
                return None;
            }
            let room = size + 2 * p - k;
            let out = if ceil { room.div_ceil(s) } else { room / s } + 1;
            // burn keeps a last ceil-mode window that holds only padding (its maximum
            // is -∞); such a pooling stays with burn.
            ((out - 1) * s < size + p).then_some(out)
        };
        Some(PoolGeometry { input, kernel, stride, padding, output: [span(0)?, span(1)?] })
    }
}

/// Forward over `planes` planes of `x`: the maxima and, for each, its index in its plane.
pub fn forward(g: &PoolGeometry, x: &[f32]) -> (Vec<f32>, Vec<u32>) {
    let [h, w] = g.input;
    let [oh, ow] = g.output;
    let planes = x.len() / (h * w);
    assert_eq!(x.len(), planes * h * w);
    assert!(u32::try_from(h * w).is_ok());
    let mut y = vec![0.0f32; planes * oh * ow];
    let mut at = vec![0u32; planes * oh * ow];
    y.par_chunks_mut(oh * ow).zip(at.par_chunks_mut(oh * ow)).zip(x.par_chunks(h * w)).for_each(|((y, at), x)| {
        for oy in 0..oh {
            let top = (oy * g.stride[0]).saturating_sub(g.padding[0]);
            let bottom = (oy * g.stride[0] + g.kernel[0] - g.padding[0]).min(h);
            for ox in 0..ow {
                let left = (ox * g.stride[1]).saturating_sub(g.padding[1]);
                let right = (ox * g.stride[1] + g.kernel[1] - g.padding[1]).min(w);
                let mut best = f32::NEG_INFINITY;
                let mut index = top * w + left;
                for iy in top..bottom {
                    for (ix, &v) in x[iy * w + left..iy * w + right].iter().enumerate() {
                        if v > best {
                            best = v;
                            index = iy * w + left + ix;
                        }
                    }
                }
                y[oy * ow + ox] = best;
                at[oy * ow + ox] = index as u32;
            }
        }
    });
    (y, at)
}

/// The input gradient: each output's gradient added at the position [`forward`] recorded.
pub fn backward(g: &PoolGeometry, dy: &[f32], at: &[u32]) -> Vec<f32> {
    let [h, w] = g.input;
    let [oh, ow] = g.output;
    let planes = dy.len() / (oh * ow);
    assert_eq!(at.len(), dy.len());
    let mut dx = vec![0.0f32; planes * h * w];
    dx.par_chunks_mut(h * w).zip(dy.par_chunks(oh * ow)).zip(at.par_chunks(oh * ow)).for_each(|((dx, dy), at)| {
        for (&d, &i) in dy.iter().zip(at) {
            dx[i as usize] += d;
        }
    });
    dx
}

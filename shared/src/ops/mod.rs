//! Operators: their validated parameters (here) and their kernels ([`mod@reference`]).
//!
//! Every parameter struct is built by [`crate::format::Model`] after validation, so a
//! kernel may rely on the preconditions documented on each field without checking them
//! in its loops. Tests build them directly from the same parts.

pub mod fast;
pub mod reference;

use serde::{Deserialize, Serialize};

use crate::quant::{OutputStage, Requant};
use crate::tensor::{I8s, I32s, Shape};

/// The geometry of a sliding window: kernel, stride and explicit zero padding.
///
/// Output size per axis: `(input + pad_before + pad_after - kernel) / stride + 1`.
/// TFLite's SAME padding puts the odd extra row/column *after* (see
/// [`Window::same`]). Invariant after validation: kernel and stride are at least 1 and
/// every padding is smaller than the kernel, so every window overlaps the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Window {
    pub kernel_h: u16,
    pub kernel_w: u16,
    pub stride_h: u16,
    pub stride_w: u16,
    pub pad_top: u16,
    pub pad_bottom: u16,
    pub pad_left: u16,
    pub pad_right: u16,
}

impl Window {
    /// No padding ("VALID").
    pub const fn valid(kernel_h: u16, kernel_w: u16, stride_h: u16, stride_w: u16) -> Window {
        Window { kernel_h, kernel_w, stride_h, stride_w, pad_top: 0, pad_bottom: 0, pad_left: 0, pad_right: 0 }
    }

    /// TFLite's "SAME" padding for an input of `height x width`: output `ceil(in /
    /// stride)`, total padding `max((out - 1) * stride + kernel - in, 0)`, of which
    /// `total / 2` goes before and the rest after.
    pub fn same(height: u16, width: u16, kernel_h: u16, kernel_w: u16, stride_h: u16, stride_w: u16) -> Window {
        fn split(input: u16, kernel: u16, stride: u16) -> (u16, u16) {
            let (input, kernel, stride) = (u32::from(input), u32::from(kernel), u32::from(stride.max(1)));
            let out = input.div_ceil(stride);
            let total = ((out.saturating_sub(1)) * stride + kernel).saturating_sub(input);
            let before = total / 2;
            let clip = |v: u32| v.min(u32::from(u16::MAX)) as u16;
            (clip(before), clip(total - before))
        }
        let (pad_top, pad_bottom) = split(height, kernel_h, stride_h);
        let (pad_left, pad_right) = split(width, kernel_w, stride_w);
        Window { kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_bottom, pad_left, pad_right }
    }

    /// True when the window is well formed on its own: kernel and stride at least 1,
    /// each padding smaller than the kernel.
    pub fn is_sane(&self) -> bool {
        self.kernel_h >= 1
            && self.kernel_w >= 1
            && self.stride_h >= 1
            && self.stride_w >= 1
            && self.pad_top < self.kernel_h
            && self.pad_bottom < self.kernel_h
            && self.pad_left < self.kernel_w
            && self.pad_right < self.kernel_w
    }

    /// The output's height and width for an input of `height x width`, or `None` if
    /// the window does not fit the padded input (or the window is not sane).
    pub fn output_size(&self, height: u16, width: u16) -> Option<(u16, u16)> {
        if !self.is_sane() {
            return None;
        }
        let axis = |input: u16, kernel: u16, stride: u16, before: u16, after: u16| {
            let padded = u32::from(input) + u32::from(before) + u32::from(after);
            let span = padded.checked_sub(u32::from(kernel))?;
            u16::try_from(span / u32::from(stride) + 1).ok()
        };
        Some((
            axis(height, self.kernel_h, self.stride_h, self.pad_top, self.pad_bottom)?,
            axis(width, self.kernel_w, self.stride_w, self.pad_left, self.pad_right)?,
        ))
    }

    /// Cells per window, counting padding.
    pub fn area(&self) -> u32 {
        u32::from(self.kernel_h) * u32::from(self.kernel_w)
    }
}

/// A 2-D convolution with per-output-channel requantization.
///
/// Weights are OHWI: `weights[((o * kernel_h + ky) * kernel_w + kx) * in_channels + i]`,
/// symmetric (zero point 0) in `[-127, 127]`. Accumulator:
/// `sum((x - input_zero_point) * w) + bias[o]` over the cells inside the image
/// (padding contributes nothing), then [`Requant::apply`] and [`OutputStage::finish`].
///
/// Precondition (checked on decode): for every output channel,
/// `(sum |w| * max|x - zp| + |bias|) << max(shift, 0)` fits in an `i32`, so no
/// intermediate value can overflow for any input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2d<'a> {
    pub window: Window,
    pub weights: I8s<'a>,
    pub bias: I32s<'a>,
    pub requant: Requant<'a>,
    pub input_zero_point: i32,
    pub output: OutputStage,
}

/// A fully connected layer: the conv rule with a `1 x 1 x in` input and OI weights
/// `weights[o * in_features + i]`. Same accumulator precondition as [`Conv2d`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FullyConnected<'a> {
    pub weights: I8s<'a>,
    pub bias: I32s<'a>,
    pub requant: Requant<'a>,
    pub input_zero_point: i32,
    pub output: OutputStage,
}

/// Global average pooling, TFLite's `MEAN` over height and width, with its own output
/// quantization: `multiplier`/`shift` represent `in_scale / out_scale`.
///
/// Precondition (checked on decode): `255 * height * width`, shifted left by the
/// effective shift, fits in an `i32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mean {
    pub multiplier: i32,
    pub shift: i32,
    pub input_zero_point: i32,
    pub output: OutputStage,
}

/// One validated operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op<'a> {
    Conv2d(Conv2d<'a>),
    FullyConnected(FullyConnected<'a>),
    /// Maximum over `pieces` adjacent channels; see [`reference::maxout`] for the layout.
    Maxout {
        pieces: u16,
    },
    /// Max pooling; input and output share one quantization.
    MaxPool2d(Window),
    /// Average pooling; input and output share one quantization.
    AvgPool2d(Window),
    GlobalAvgPool(Mean),
    /// NHWC `H x W x C` to `1 x 1 x HWC`: the bytes do not move.
    Flatten,
}

/// One validated layer with the shapes it reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layer<'a> {
    pub op: Op<'a>,
    pub input: Shape,
    pub output: Shape,
}

//! The shape of a convolution over one image, shared by the kernels of [`super::conv`]
//! and [`super::unrolled`].

/// The shape of a convolution over one image. Invariant (checked by [`ConvGeometry::new`]):
/// the padded input holds at least one window in each direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGeometry {
    /// Input channels, height and width.
    pub input: [usize; 3],
    /// Output channels before maxout: `units * pieces`.
    pub outputs: usize,
    /// Pieces per maxout unit (1: no maxout).
    pub pieces: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    /// Zeros added above and to the left of the input.
    pub pad_before: [usize; 2],
    /// Output height and width.
    pub output: [usize; 2],
}

impl ConvGeometry {
    /// The geometry of a conv over `input` (`[C, H, W]`) with padding `[top, left,
    /// bottom, right]`; `None` if no window fits or `pieces` does not divide `outputs`.
    pub fn new(
        input: [usize; 3],
        outputs: usize,
        pieces: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 4],
    ) -> Option<ConvGeometry> {
        let [_, h, w] = input;
        let [top, left, bottom, right] = padding;
        let span = |size: usize, before: usize, after: usize, k: usize, s: usize| {
            let padded = size + before + after;
            (s > 0 && k > 0 && padded >= k).then(|| (padded - k) / s + 1)
        };
        let oh = span(h, top, bottom, kernel[0], stride[0])?;
        let ow = span(w, left, right, kernel[1], stride[1])?;
        (pieces > 0 && outputs > 0 && outputs.is_multiple_of(pieces)).then_some(ConvGeometry {
            input,
            outputs,
            pieces,
            kernel,
            stride,
            pad_before: [top, left],
            output: [oh, ow],
        })
    }

    /// Rows of the column matrix: `C * kh * kw`.
    pub fn window(&self) -> usize {
        self.input[0] * self.kernel[0] * self.kernel[1]
    }

    /// Output positions per channel: `H' * W'`.
    pub fn positions(&self) -> usize {
        self.output[0] * self.output[1]
    }

    /// Maxout units: `outputs / pieces`.
    pub fn units(&self) -> usize {
        self.outputs / self.pieces
    }

    /// Values of one input image.
    pub fn input_len(&self) -> usize {
        self.input.iter().product()
    }

    /// Values of one output image (after maxout).
    pub fn output_len(&self) -> usize {
        self.units() * self.positions()
    }
}

//! Tensor shapes and borrowed little-endian views of blob buffers.

use serde::{Deserialize, Serialize};

/// The shape of one image-like tensor, stored NHWC with a batch of one.
///
/// Vectors (fully connected layers, logits) are `1 x 1 x N`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Shape {
    pub height: u16,
    pub width: u16,
    pub channels: u16,
}

impl Shape {
    pub const fn new(height: u16, width: u16, channels: u16) -> Shape {
        Shape { height, width, channels }
    }

    /// A `1 x 1 x n` vector.
    pub const fn vector(n: u16) -> Shape {
        Shape::new(1, 1, n)
    }

    /// Number of elements, or `None` if it does not fit in a `u32`.
    pub fn checked_len(self) -> Option<u32> {
        u32::from(self.height).checked_mul(u32::from(self.width))?.checked_mul(u32::from(self.channels))
    }

    /// Number of elements. Only for shapes whose length was checked when the model
    /// was decoded (every shape a validated model hands out).
    pub fn len(self) -> usize {
        usize::from(self.height) * usize::from(self.width) * usize::from(self.channels)
    }

    /// True when some dimension is zero.
    pub fn is_empty(self) -> bool {
        self.height == 0 || self.width == 0 || self.channels == 0
    }

    /// Offset of element `(y, x, c)` in NHWC order.
    #[inline(always)]
    pub fn index(self, y: usize, x: usize, c: usize) -> usize {
        (y * usize::from(self.width) + x) * usize::from(self.channels) + c
    }
}

/// A borrowed buffer of `i8` values, stored as raw bytes (any alignment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct I8s<'a>(pub &'a [u8]);

impl<'a> I8s<'a> {
    pub fn len(self) -> usize {
        self.0.len()
    }

    pub fn is_empty(self) -> bool {
        self.0.is_empty()
    }

    #[inline(always)]
    pub fn get(self, i: usize) -> i8 {
        self.0[i] as i8
    }

    /// The values as an `i8` slice (same layout as `u8`, so no copy).
    pub fn as_slice(self) -> &'a [i8] {
        bytemuck::cast_slice(self.0)
    }
}

/// A borrowed buffer of little-endian `i32` values, stored as raw bytes (any alignment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct I32s<'a>(pub &'a [u8]);

impl I32s<'_> {
    /// Number of `i32` values.
    pub fn len(self) -> usize {
        self.0.len() / 4
    }

    pub fn is_empty(self) -> bool {
        self.0.len() < 4
    }

    #[inline(always)]
    pub fn get(self, i: usize) -> i32 {
        let b = &self.0[4 * i..4 * i + 4];
        i32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    pub fn iter(self) -> impl Iterator<Item = i32> {
        self.0.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

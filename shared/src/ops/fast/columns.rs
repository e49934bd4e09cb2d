//! How the conv kernel lays out the input windows it multiplies: a [`Layout`] fills a
//! chunk of columns (four pixels' windows) and takes dot products over it. Two exist:
//! [`Packed`], 16-bit lanes for the DSP extension's `SMLAD`, and [`Bytes`], one byte per
//! value for a plain multiplier (Cortex-M0+ and the host). Both give the reference's
//! accumulators exactly; [`Columns::NATIVE`] is the one this target runs, and the tests
//! run both.

mod bytes;
mod packed;

pub use bytes::Bytes;
pub use packed::Packed;

use super::Fused;
use super::scale::Channel;
use crate::quant::OutputStage;

/// Pixels per chunk, and per inner loop.
pub const LANES: usize = 4;

/// A column layout.
pub trait Layout {
    /// Words of one chunk's columns. At most [`Packed`]'s, which sizes the scratch.
    fn chunk_words(step: &Fused<'_>) -> usize;

    /// The table entry of conv channel `o`, whose `k` weights are `weights`.
    fn channel(step: &Fused<'_>, o: usize, weights: &[u8]) -> Channel;

    /// Whether the inner loop wants whole runs of 4 weights: a window that is not gets
    /// its weights copied, padded with zeros, once per step.
    const PADS_WEIGHTS: bool;

    /// Packs conv pixel `(y, x)`'s window into slot `slot` of `chunk`.
    fn fill_column(step: &Fused<'_>, input: &[i8], y: usize, x: usize, chunk: &mut [u32], slot: usize);

    /// `bias + dot(column, weights)` for the four pixels of `chunk`, with the channel
    /// `c` whose `k` weights are `weights`.
    fn dot_4(chunk: &[u32], weights: &[u8], c: &Channel) -> [i32; LANES];

    /// The largest of [`Layout::dot_4`]'s four sums: what a pooled step keeps.
    #[inline(always)]
    fn dot_max(chunk: &[u32], weights: &[u8], c: &Channel) -> i32 {
        let [a, b, c, d] = Self::dot_4(chunk, weights, c);
        a.max(b).max(c.max(d))
    }

    /// Every unit of a pooled cell whose pool window fits one chunk (`chunk`), into
    /// `out` (one value per unit), as the conv kernel's loop computes it, where the layout
    /// has a faster way; `false` where it has none and the kernel's loop must run.
    fn pooled_cell(_chunk: &[u32], _channels: Channels<'_>, _out: &mut [i8]) -> bool {
        false
    }

    /// Every unit of the first `cells` pixels of `chunk` (an unpooled step), into `out`
    /// (`units` values per pixel), as the conv kernel's loop computes it, where the
    /// layout has a faster way; `false` where it has none.
    fn pixel_chunk(_chunk: &[u32], _channels: Channels<'_>, _units: usize, _cells: usize, _out: &mut [i8]) -> bool {
        false
    }
}

/// The conv channels of a step as its cell loops take them: `units * pieces` channels,
/// `k` weights each (whole runs of 4 where the layout pads), one table entry each.
/// Only a DSP core's cell loops read it; elsewhere the kernel's plain loops run.
#[derive(Clone, Copy, Debug)]
#[cfg_attr(not(fitnets_dsp), allow(dead_code))]
pub struct Channels<'a> {
    pub weights: &'a [u8],
    pub table: &'a [Channel],
    pub k: usize,
    /// Maxout pieces per unit.
    pub pieces: usize,
    /// Whether a unit's pieces share their requantization ([`super::Fused::units_share_scale`]).
    pub shared: bool,
    pub stage: OutputStage,
}

/// The layouts, to choose one at run time (the tests run both on the host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Columns {
    /// 16-bit lanes, two words per run of 4 values and pixel, for `SMLAD`.
    Packed,
    /// One byte per value and pixel, for a plain multiplier.
    Bytes,
}

impl Columns {
    /// The layout this target runs: `Packed` with the DSP extension, else `Bytes`.
    pub const NATIVE: Columns = if cfg!(fitnets_dsp) { Columns::Packed } else { Columns::Bytes };
}

//! Whole output cells in one `asm!` on a DSP core, for the conv kernel's two loops:
//! [`pooled_cell`] (a pool window that fits one chunk) and [`pixel_chunk`] (four
//! unpooled pixels). For every maxout unit, every piece's dot products over the chunk
//! ([`runs_loop`]), requantization (`scale::requantize`'s 8 instructions), the maxima
//! over the pool window and the pieces, and the output stage, with nothing spilled by
//! the compiler: the loop's state lives in a frame that one register points to, beside
//! the 11 registers the dot products take. The plain-Rust loops of the conv kernel are
//! their twins (the same arithmetic, step by step, which the host's tests check
//! against the reference); the firmware's kernel check compares the device's results
//! with the host's on random models, half of them with shared unit scales.

use super::RUN_WORDS;
use crate::ops::fast::columns::Channels;
use crate::ops::fast::scale::Channel;

/// The start of both frames: where the loops are. Offsets in bytes are fixed by the
/// templates.
#[repr(C)]
struct Walk {
    /// 0: the chunk's columns.
    chunk: *const u32,
    /// 4: weights per channel, in bytes (whole runs of 4).
    k: usize,
    /// 8: the next channel's table entry.
    table: *const Channel,
    /// 12: the next unit's output (its value for the chunk's first pixel).
    out: *mut i8,
    /// 16: where the units' outputs end (one past the last unit's first value).
    out_end: *mut i8,
    /// 20: pieces per unit.
    pieces: u32,
    /// 24: pieces left in this unit.
    left: u32,
}

/// How each unit ends, at the same place in both frames after their running maxima.
#[repr(C)]
struct Ending {
    /// +0: whether a unit's pieces share their requantization: then the running
    /// maxima are accumulators, requantized once.
    shared: u32,
    /// +4, +8, +12: the output stage.
    zero_point: i32,
    min: i32,
    max: i32,
}

impl Walk {
    /// The walk over `channels` for `units` units whose outputs start at `out`, after
    /// checking what keeps every access of the `asm!` loops in bounds: `chunk` holds
    /// `k / 4` runs, and every channel its weights and table entry.
    fn new(chunk: &[u32], channels: &Channels<'_>, units: usize, out: *mut i8) -> Walk {
        let Channels { weights, table, k, pieces, .. } = *channels;
        let count = units * pieces;
        assert!(k > 0 && k.is_multiple_of(4) && pieces > 0 && pieces <= u32::MAX as usize);
        assert!(chunk.len() >= k / 4 * RUN_WORDS && weights.len() >= count * k && table.len() >= count);
        Walk {
            chunk: chunk.as_ptr(),
            k,
            table: table.as_ptr(),
            out,
            out_end: out.wrapping_add(units),
            pieces: pieces as u32,
            left: 0,
        }
    }
}

impl Ending {
    fn of(channels: &Channels<'_>) -> Ending {
        let stage = channels.stage;
        Ending { shared: u32::from(channels.shared), zero_point: stage.zero_point, min: stage.min, max: stage.max }
    }
}

/// The pooled loop's frame.
#[repr(C)]
struct Frame {
    /// 0..28.
    walk: Walk,
    /// 28: this unit's running maximum.
    best: i32,
    /// 32..48.
    ending: Ending,
}

/// Requantizes `{a0}` with the channel at `{p}`, as `scale::requantize` on a DSP
/// core; clobbers `{a1}`, `{u}`, `{t}`, `{x0}`, `{x1}`, `{end}`.
#[cfg(not(fitnets_broken))]
macro_rules! requantize_a0 {
    () => {
        concat!(
            "ldrd {x0}, {x1}, [{p}, #12]\n", // right, mask
            "ldrd {u}, {t}, [{p}, #20]\n",   // half, doubled multiplier
            "ldr {end}, [{p}, #28]\n",       // left shift
            "lsl {a1}, {a0}, {end}\n",
            "smmlar {a0}, {a1}, {t}, {a1}\n",
            "and {a1}, {a0}, {x1}\n",
            "add {u}, {u}, {a0}, lsr #31\n",
            "asr {a0}, {a0}, {x0}\n",
            "cmp {a1}, {u}\n",
            "it gt\n",
            "addgt {a0}, {a0}, #1\n",
        )
    };
}

/// The bug on purpose (`build.rs`): negative ties round towards zero.
#[cfg(fitnets_broken)]
macro_rules! requantize_a0 {
    () => {
        concat!(
            "ldrd {x0}, {x1}, [{p}, #12]\n",
            "ldrd {u}, {t}, [{p}, #20]\n",
            "ldr {end}, [{p}, #28]\n",
            "lsl {a1}, {a0}, {end}\n",
            "smmlar {a0}, {a1}, {t}, {a1}\n",
            "and {a1}, {a0}, {x1}\n",
            "asr {a0}, {a0}, {x0}\n",
            "cmp {a1}, {u}\n",
            "it gt\n",
            "addgt {a0}, {a0}, #1\n",
        )
    };
}

/// Every unit of a pooled cell whose pixels fit one chunk: `chunk` (at least `2 * k`
/// words) and the `out.len() * pieces` channels (`k` a non-zero multiple of 4), into
/// `out` (one value per unit).
pub(in crate::ops::fast) fn pooled_cell(chunk: &[u32], channels: Channels<'_>, out: &mut [i8]) {
    if out.is_empty() {
        return;
    }
    let mut frame = Frame {
        walk: Walk::new(chunk, &channels, out.len(), out.as_mut_ptr()),
        best: 0,
        ending: Ending::of(&channels),
    };
    let weights = channels.weights;
    // SAFETY: per channel the loop reads `k` weight bytes (LDR, any alignment on a
    // Cortex-M4/M7) from `weights` in order, `2 k` words of `chunk` (LDRD, word-aligned)
    // and one 32-byte table entry in order: `units * pieces` of each, in bounds by
    // `Walk::new`'s asserts; it writes one byte per unit to `out` in order (`out.len()` units) and
    // the frame's fields, and touches no stack, only the registers declared and the
    // flags.
    unsafe {
        core::arch::asm!(
            "5:",
            // A unit: its maximum from i32::MIN, its pieces to go.
            "mov {a0}, #0x80000000",
            "str {a0}, [{f}, #28]",
            "ldr {a0}, [{f}, #20]",
            "str {a0}, [{f}, #24]",
            "6:",
            // A piece: the chunk, its weights' end, its bias.
            "ldr {p}, [{f}, #0]",
            "ldr {end}, [{f}, #4]",
            "add {end}, {end}, {q}",
            "ldr {u}, [{f}, #8]",
            "ldr {a0}, [{u}]",
            runs_loop!(),
            "cmp {a0}, {a1}",
            "it lt",
            "movlt {a0}, {a1}",
            "cmp {a2}, {a3}",
            "it lt",
            "movlt {a2}, {a3}",
            "cmp {a0}, {a2}",
            "it lt",
            "movlt {a0}, {a2}",
            // Requantized unless the unit shares its scale.
            "ldr {p}, [{f}, #8]",
            "ldr {t}, [{f}, #32]",
            "cmp {t}, #0",
            "bne 7f",
            requantize_a0!(),
            "7:",
            "ldr {a1}, [{f}, #28]",
            "cmp {a0}, {a1}",
            "it lt",
            "movlt {a0}, {a1}",
            "str {a0}, [{f}, #28]",
            "add {p}, {p}, #32",
            "str {p}, [{f}, #8]",
            "ldr {a1}, [{f}, #24]",
            "subs {a1}, {a1}, #1",
            "str {a1}, [{f}, #24]",
            "bne 6b",
            // The unit's largest value (a shared scale: requantized now, with its
            // last piece's entry, which all its pieces share), then the output stage.
            "ldr {t}, [{f}, #32]",
            "cmp {t}, #0",
            "beq 8f",
            "sub {p}, {p}, #32",
            requantize_a0!(),
            "8:",
            "ldr {x0}, [{f}, #36]",
            "qadd {a0}, {a0}, {x0}",
            "ldr {x0}, [{f}, #40]",
            "cmp {a0}, {x0}",
            "it lt",
            "movlt {a0}, {x0}",
            "ldr {x0}, [{f}, #44]",
            "cmp {a0}, {x0}",
            "it gt",
            "movgt {a0}, {x0}",
            "ldr {x0}, [{f}, #12]",
            "strb {a0}, [{x0}], #1",
            "str {x0}, [{f}, #12]",
            "ldr {x1}, [{f}, #16]",
            "cmp {x0}, {x1}",
            "bne 5b",
            f = in(reg) &raw mut frame,
            q = inout(reg) weights.as_ptr() => _,
            p = out(reg) _,
            end = out(reg) _,
            a0 = out(reg) _,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            u = out(reg) _,
            t = out(reg) _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            options(nostack),
        );
    }
}

/// The threshold of lane `$a`'s rounding division, `half + (h < 0)`, into `{q}`.
#[cfg(not(fitnets_broken))]
macro_rules! lane_threshold {
    ($a:literal) => {
        concat!("add {q}, {u}, {", $a, "}, lsr #31\n")
    };
}

/// The bug on purpose (`build.rs`): negative ties round towards zero.
#[cfg(fitnets_broken)]
macro_rules! lane_threshold {
    ($a:literal) => {
        "mov {q}, {u}\n"
    };
}

/// Requantizes lane `$a` with the constants that [`load_constants`] put in `{x0}`
/// (right), `{x1}` (mask), `{u}` (half), `{t}` (doubled multiplier) and `{end}` (left);
/// clobbers `{p}` and `{q}`.
macro_rules! requantize_lane {
    ($a:literal) => {
        concat!(
            "lsl {p}, {",
            $a,
            "}, {end}\n",
            "smmlar {",
            $a,
            "}, {p}, {t}, {p}\n",
            "and {p}, {",
            $a,
            "}, {x1}\n",
            lane_threshold!($a),
            "asr {",
            $a,
            "}, {",
            $a,
            "}, {x0}\n",
            "cmp {p}, {q}\n",
            "it gt\n",
            "addgt {",
            $a,
            "}, {",
            $a,
            "}, #1\n",
        )
    };
}

/// The requantization constants of the channel at `{p}`, for [`requantize_lane`].
macro_rules! load_constants {
    () => {
        concat!("ldrd {x0}, {x1}, [{p}, #12]\n", "ldrd {u}, {t}, [{p}, #20]\n", "ldr {end}, [{p}, #28]\n",)
    };
}

/// The four lanes, requantized.
macro_rules! requantize_lanes {
    () => {
        concat!(
            load_constants!(),
            requantize_lane!("a0"),
            requantize_lane!("a1"),
            requantize_lane!("a2"),
            requantize_lane!("a3"),
        )
    };
}

/// The output stage of lane `$a` (zero point `{u}`, clamp to `{t}`..`{x0}`).
macro_rules! finish_lane {
    ($a:literal) => {
        concat!(
            "qadd {",
            $a,
            "}, {",
            $a,
            "}, {u}\n",
            "cmp {",
            $a,
            "}, {t}\n",
            "it lt\n",
            "movlt {",
            $a,
            "}, {t}\n",
            "cmp {",
            $a,
            "}, {x0}\n",
            "it gt\n",
            "movgt {",
            $a,
            "}, {x0}\n",
        )
    };
}

/// The unpooled loop's frame.
#[repr(C)]
struct PixelFrame {
    /// 0..28.
    walk: Walk,
    /// 28: the next channel's weights.
    weights: *const u8,
    /// 32..48: this unit's running maxima, one per pixel.
    best: [i32; 4],
    /// 48..64.
    ending: Ending,
    /// 64: bytes from one pixel's values to the next's (the units).
    units: usize,
    /// 68: the pixels of the chunk that are output cells (1 to 4).
    cells: u32,
}

/// Every unit of the first `cells` pixels of `chunk` (at least `2 * k` words), from
/// the `units * pieces` channels (`k` a non-zero multiple of 4), into `out` (pixel by
/// pixel, `units` values each).
pub(in crate::ops::fast) fn pixel_chunk(
    chunk: &[u32],
    channels: Channels<'_>,
    units: usize,
    cells: usize,
    out: &mut [i8],
) {
    assert!((1..=4).contains(&cells) && out.len() >= cells * units);
    if units == 0 {
        return;
    }
    let mut frame = PixelFrame {
        walk: Walk::new(chunk, &channels, units, out.as_mut_ptr()),
        weights: channels.weights.as_ptr(),
        best: [0; 4],
        ending: Ending::of(&channels),
        units,
        cells: cells as u32,
    };
    // SAFETY: per channel the loop reads `k` weight bytes (LDR, any alignment on a
    // Cortex-M4/M7) from `weights` in order, `2 k` words of `chunk` (LDRD, word-aligned)
    // and one 32-byte table entry in order: `units * pieces` of each, in bounds by
    // `Walk::new`'s asserts; per unit `u` it writes `out[c * units + u]` for the `cells` pixels `c`,
    // in bounds as `out.len() >= cells * units`, and the frame's fields (word-aligned
    // for LDRD/STRD); it touches no stack, only the registers declared and the flags.
    unsafe {
        core::arch::asm!(
            "5:",
            // A unit: its maxima from i32::MIN, its pieces to go.
            "mov {a0}, #0x80000000",
            "mov {a1}, {a0}",
            "strd {a0}, {a1}, [{f}, #32]",
            "strd {a0}, {a1}, [{f}, #40]",
            "ldr {a0}, [{f}, #20]",
            "str {a0}, [{f}, #24]",
            "6:",
            // A piece: the chunk, its weights, their end, its bias.
            "ldr {p}, [{f}, #0]",
            "ldr {q}, [{f}, #28]",
            "ldr {end}, [{f}, #4]",
            "add {end}, {end}, {q}",
            "ldr {u}, [{f}, #8]",
            "ldr {a0}, [{u}]",
            runs_loop!(),
            "str {q}, [{f}, #28]",
            // Requantized unless the unit shares its scale.
            "ldr {p}, [{f}, #8]",
            "ldr {t}, [{f}, #48]",
            "cmp {t}, #0",
            "bne 7f",
            requantize_lanes!(),
            "7:",
            "ldrd {p}, {q}, [{f}, #32]",
            "cmp {a0}, {p}",
            "it lt",
            "movlt {a0}, {p}",
            "cmp {a1}, {q}",
            "it lt",
            "movlt {a1}, {q}",
            "strd {a0}, {a1}, [{f}, #32]",
            "ldrd {p}, {q}, [{f}, #40]",
            "cmp {a2}, {p}",
            "it lt",
            "movlt {a2}, {p}",
            "cmp {a3}, {q}",
            "it lt",
            "movlt {a3}, {q}",
            "strd {a2}, {a3}, [{f}, #40]",
            "ldr {p}, [{f}, #8]",
            "add {p}, {p}, #32",
            "str {p}, [{f}, #8]",
            "ldr {u}, [{f}, #24]",
            "subs {u}, {u}, #1",
            "str {u}, [{f}, #24]",
            "bne 6b",
            // The unit's maxima, in a0..a3 (a shared scale: requantized now, with its
            // last piece's entry, which all its pieces share), then the output stage
            // and the stores, one per output cell.
            "ldr {t}, [{f}, #48]",
            "cmp {t}, #0",
            "beq 8f",
            "sub {p}, {p}, #32",
            requantize_lanes!(),
            "8:",
            "ldr {u}, [{f}, #52]",
            "ldr {t}, [{f}, #56]",
            "ldr {x0}, [{f}, #60]",
            "ldr {p}, [{f}, #12]",
            "ldr {x1}, [{f}, #64]",
            "ldr {end}, [{f}, #68]",
            finish_lane!("a0"),
            "strb {a0}, [{p}]",
            "cmp {end}, #1",
            "beq 9f",
            finish_lane!("a1"),
            "strb {a1}, [{p}, {x1}]",
            "cmp {end}, #2",
            "beq 9f",
            "add {q}, {p}, {x1}, lsl #1",
            finish_lane!("a2"),
            "strb {a2}, [{q}]",
            "cmp {end}, #3",
            "beq 9f",
            "add {q}, {q}, {x1}",
            finish_lane!("a3"),
            "strb {a3}, [{q}]",
            "9:",
            "add {p}, {p}, #1",
            "str {p}, [{f}, #12]",
            "ldr {q}, [{f}, #16]",
            "cmp {p}, {q}",
            "bne 5b",
            f = in(reg) &raw mut frame,
            q = out(reg) _,
            p = out(reg) _,
            end = out(reg) _,
            a0 = out(reg) _,
            a1 = out(reg) _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            u = out(reg) _,
            t = out(reg) _,
            x0 = out(reg) _,
            x1 = out(reg) _,
            options(nostack),
        );
    }
}

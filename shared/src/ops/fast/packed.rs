//! Two 16-bit lanes in one 32-bit word: the arithmetic of the Cortex-M DSP extension.
//!
//! On a core with the DSP extension (`cfg(fitnets_dsp)`, set by `build.rs` for
//! `thumbv7em` targets, and `thumbv8m.main` ones built with it) each function is one instruction through
//! `asm!`, because the compiler does not emit `SXTB16` and fuses `SMLAD` only from
//! 16-bit loads. Elsewhere (the host, Cortex-M0+) each is the same arithmetic in plain
//! Rust. Both give the same bits for every input: the lanes are exact 16-bit values and
//! `smlad`'s sum never overflows under the accumulator bound every kernel relies on.
//!
//! Lane order: lane 0 is bits 0..16, lane 1 bits 16..32.

/// Sign-extends bytes 0 and 2 of `x` into lanes 0 and 1 (`SXTB16`).
#[inline(always)]
pub fn sxtb16(x: u32) -> u32 {
    #[cfg(fitnets_dsp)]
    {
        let out: u32;
        // SAFETY: a register-only instruction of the DSP extension, which `fitnets_dsp`
        // guarantees; no memory, stack or flags are touched.
        unsafe {
            core::arch::asm!("sxtb16 {0}, {1}", lateout(reg) out, in(reg) x, options(pure, nomem, nostack, preserves_flags))
        };
        out
    }
    #[cfg(not(fitnets_dsp))]
    {
        let lane0 = (x as u8 as i8 as i16 as u16) as u32;
        let lane1 = ((x >> 16) as u8 as i8 as i16 as u16) as u32;
        lane0 | lane1 << 16
    }
}

/// Sign-extends bytes 1 and 3 of `x` into lanes 0 and 1 (`SXTB16 ..., ROR #8`).
#[inline(always)]
pub fn sxtb16_ror8(x: u32) -> u32 {
    #[cfg(fitnets_dsp)]
    {
        let out: u32;
        // SAFETY: as in `sxtb16`.
        unsafe {
            core::arch::asm!("sxtb16 {0}, {1}, ror #8", lateout(reg) out, in(reg) x, options(pure, nomem, nostack, preserves_flags))
        };
        out
    }
    #[cfg(not(fitnets_dsp))]
    {
        sxtb16(x >> 8)
    }
}

/// `acc + lane0(x) * lane0(y) + lane1(x) * lane1(y)`, lanes signed (`SMLAD`).
///
/// Precondition: the sum fits in an `i32` (the kernels' accumulator bound).
#[inline(always)]
pub fn smlad(x: u32, y: u32, acc: i32) -> i32 {
    #[cfg(fitnets_dsp)]
    {
        let out: i32;
        // SAFETY: a register-only DSP instruction; it may set the Q flag, which nothing
        // reads, so flags are not declared preserved.
        unsafe {
            core::arch::asm!("smlad {0}, {1}, {2}, {3}", lateout(reg) out, in(reg) x, in(reg) y, in(reg) acc, options(pure, nomem, nostack))
        };
        out
    }
    #[cfg(not(fitnets_dsp))]
    {
        let lo = i32::from(x as i16) * i32::from(y as i16);
        let hi = i32::from((x >> 16) as i16) * i32::from((y >> 16) as i16);
        acc + lo + hi
    }
}

/// `x - (z, z)` lane by lane, wrapping (`SSUB16`). Used with `|lane| <= 128` and
/// `|z| <= 128`, so it never wraps.
#[inline(always)]
pub fn ssub16(x: u32, z: u32) -> u32 {
    #[cfg(fitnets_dsp)]
    {
        let out: u32;
        // SAFETY: a register-only DSP instruction; it sets the GE flags, which nothing
        // reads, so flags are not declared preserved.
        unsafe {
            core::arch::asm!("ssub16 {0}, {1}, {2}", lateout(reg) out, in(reg) x, in(reg) z, options(pure, nomem, nostack))
        };
        out
    }
    #[cfg(not(fitnets_dsp))]
    {
        let lo = (x as u16).wrapping_sub(z as u16);
        let hi = ((x >> 16) as u16).wrapping_sub((z >> 16) as u16);
        u32::from(lo) | u32::from(hi) << 16
    }
}

/// Both lanes set to `v`.
#[inline(always)]
pub fn splat(v: i16) -> u32 {
    let lane = u32::from(v as u16);
    lane | lane << 16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lanes(x: u32) -> (i16, i16) {
        (x as i16, (x >> 16) as i16)
    }

    #[test]
    fn lanes_follow_the_instruction_set_manual() {
        let x = u32::from_le_bytes([0x80, 0x7F, 0xFF, 0x01]);
        assert_eq!(lanes(sxtb16(x)), (-128, -1));
        assert_eq!(lanes(sxtb16_ror8(x)), (127, 1));
        assert_eq!(smlad(splat(-3) & 0xFFFF | (5 << 16), splat(7), 10), 10 - 21 + 35);
        assert_eq!(lanes(ssub16(sxtb16(x), splat(-128))), (0, 127));
        assert_eq!(lanes(splat(-2)), (-2, -2));
    }
}

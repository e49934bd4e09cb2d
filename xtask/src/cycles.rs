//! Estimated cycles and milliseconds of one inference, from the exact per-address
//! instruction counts of `cargo xtask bench` and the cycle costs that ARM publishes per
//! instruction class (Cortex-M4 TRM, table 3-1; Cortex-M0+ TRM, instruction timings),
//! for a system with zero wait states.
//!
//! Each executed address is decoded from the ELF (Thumb and Thumb-2) into a class. What
//! the counts do not say is estimated:
//! - a conditional branch is taken as often as its address runs minus the instruction
//!   after it runs (exact unless that instruction is also a branch target);
//! - on the M4 a load or store right after another one pipelines (one cycle instead of
//!   two), judged from the instruction before it in memory;
//! - a pipeline refill after a taken branch costs `P = 2` on the M4 (the TRM gives 1 to
//!   3), 1 on the M0+ (2 cycles per taken branch);
//! - divides cost 7 cycles on the M4 (2 to 12 by the operands).
//!
//! Limits, stated with every figure: flash wait states (STM32F405 at 168 MHz has 5,
//! hidden by the ART accelerator for loops that fit it; STM32G071 at 64 MHz has 2 with a
//! prefetch buffer; the RP2040 runs from QSPI flash through a 16 KB cache), bus
//! contention and interrupts are not modelled, so real boards take somewhat longer. The
//! Cortex-M7 (dual issue, caches) is not modelled.

use std::collections::HashMap;

/// A core with a cycle model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Core {
    CortexM4,
    CortexM0Plus,
}

impl Core {
    /// Its name in `firmware/memory/cycles.txt`.
    pub fn key(self) -> &'static str {
        match self {
            Core::CortexM4 => "cortex-m4",
            Core::CortexM0Plus => "cortex-m0plus",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Core::CortexM4 => "Cortex-M4",
            Core::CortexM0Plus => "Cortex-M0+",
        }
    }
}

/// A chip whose latency is estimated: the core and the clock it runs at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chip {
    pub name: &'static str,
    pub core: Core,
    pub mhz: u32,
}

/// The chips the latency is estimated for.
pub const CHIPS: [Chip; 4] = [
    Chip { name: "nRF52840", core: Core::CortexM4, mhz: 64 },
    Chip { name: "STM32F405", core: Core::CortexM4, mhz: 168 },
    Chip { name: "STM32G071", core: Core::CortexM0Plus, mhz: 64 },
    Chip { name: "RP2040", core: Core::CortexM0Plus, mhz: 133 },
];

/// What an instruction is, for its cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// Data processing, moves, extends, saturation, DSP arithmetic other than multiply.
    Alu,
    /// A multiply with a 32-bit result (`MUL`, `MLA`, `SMLAD`, `MULS`, …).
    Multiply,
    /// A multiply with a 64-bit result (`SMULL`, `UMLAL`, …).
    LongMultiply,
    Divide,
    /// A single load (`LDR`, `LDRB`, `LDRSH`, …).
    Load,
    /// A single store.
    Store,
    /// `LDRD`/`STRD`.
    Dual,
    /// `LDM`/`STM`/`PUSH`/`POP` (without the PC) of this many registers.
    Multiple(u8),
    /// A conditional branch (`B<cond>`, `CBZ`, `CBNZ`).
    CondBranch,
    /// An unconditional branch, `BX`, or `POP` with the PC (of this many registers).
    Branch,
    /// `BL`, `BLX`.
    Call,
    /// `POP {…, pc}` of this many registers.
    PopPc(u8),
}

/// One decoded instruction: its class and size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decoded {
    pub class: Class,
    pub size: u32,
}

/// Decodes the Thumb instruction whose halfwords are `hw` and `hw2` (`hw2` ignored for a
/// 16-bit one).
pub fn decode(hw: u16, hw2: u16) -> Decoded {
    if matches!(hw >> 11, 0b11101..=0b11111) {
        return Decoded { class: decode32(hw, hw2), size: 4 };
    }
    let class = if hw >> 11 == 0b01001 {
        Class::Load // LDR literal
    } else if hw >> 12 == 0b0101 {
        if (hw >> 9) & 7 < 3 { Class::Store } else { Class::Load }
    } else if matches!(hw >> 12, 0b0110..=0b1001) {
        if hw & (1 << 11) != 0 { Class::Load } else { Class::Store }
    } else if hw >> 12 == 0b1100 {
        Class::Multiple((hw & 0xFF).count_ones() as u8)
    } else if hw >> 9 == 0b1011010 {
        Class::Multiple((hw & 0xFF).count_ones() as u8 + u8::from(hw & 0x100 != 0))
    } else if hw >> 9 == 0b1011110 {
        let n = (hw & 0xFF).count_ones() as u8;
        if hw & 0x100 != 0 { Class::PopPc(n + 1) } else { Class::Multiple(n) }
    } else if hw >> 6 == 0b0100001101 {
        Class::Multiply
    } else if hw >> 12 == 0b1101 {
        if (hw >> 8) & 0xF >= 0xE { Class::Alu } else { Class::CondBranch }
    } else if hw >> 11 == 0b11100 || hw >> 7 == 0b010001110 {
        Class::Branch // B, BX
    } else if hw >> 7 == 0b010001111 {
        Class::Call // BLX
    } else if hw & 0xF500 == 0xB100 {
        Class::CondBranch // CBZ, CBNZ
    } else {
        Class::Alu
    };
    Decoded { class, size: 2 }
}

fn decode32(hw: u16, hw2: u16) -> Class {
    if hw >> 11 == 0b11110 && hw2 & 0x8000 != 0 {
        return match hw2 & 0xD000 {
            0xD000 | 0xC000 => Class::Call,
            0x9000 => Class::Branch,
            0x8000 if (hw >> 6) & 0xF < 0xE => Class::CondBranch,
            _ => Class::Alu, // MSR, MRS, hints, barriers
        };
    }
    if hw >> 9 == 0b1111100 {
        return if hw & 0x10 != 0 { Class::Load } else { Class::Store };
    }
    if hw >> 9 == 0b1110100 {
        if hw & 0x40 != 0 {
            return Class::Dual; // LDRD, STRD (and the exclusives, rare)
        }
        let n = hw2.count_ones() as u8;
        return if hw & 0x10 != 0 && hw2 & 0x8000 != 0 { Class::PopPc(n) } else { Class::Multiple(n) };
    }
    if hw >> 7 == 0b111110110 {
        return Class::Multiply;
    }
    if hw >> 7 == 0b111110111 {
        return if matches!((hw >> 4) & 7, 0b001 | 0b011) { Class::Divide } else { Class::LongMultiply };
    }
    Class::Alu
}

/// Cycles of one execution of an instruction of `class` on `core`, given whether it is a
/// taken branch and whether it follows a load or store (M4 pipelining).
fn cost(core: Core, class: Class, taken: bool, after_memory: bool) -> u64 {
    match core {
        Core::CortexM4 => {
            const P: u64 = 2;
            match class {
                Class::Alu | Class::Multiply | Class::LongMultiply => 1,
                Class::Divide => 7,
                Class::Load | Class::Store => {
                    if after_memory {
                        1
                    } else {
                        2
                    }
                }
                Class::Dual => 3,
                Class::Multiple(n) => 1 + u64::from(n),
                Class::CondBranch => {
                    if taken {
                        1 + P
                    } else {
                        1
                    }
                }
                Class::Branch | Class::Call => 1 + P,
                Class::PopPc(n) => 1 + u64::from(n) + P,
            }
        }
        Core::CortexM0Plus => match class {
            Class::Alu | Class::Multiply => 1,
            // Not in ARMv6-M: a library routine does them; never decoded from M0+ code.
            Class::LongMultiply | Class::Divide => 1,
            Class::Load | Class::Store => 2,
            Class::Dual => 4,
            Class::Multiple(n) => 1 + u64::from(n),
            Class::CondBranch => {
                if taken {
                    2
                } else {
                    1
                }
            }
            Class::Branch => 2,
            Class::Call => 3,
            Class::PopPc(n) => 3 + u64::from(n),
        },
    }
}

/// The estimate for one region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Estimate {
    pub core: Core,
    pub instructions: u64,
    pub cycles: u64,
    /// Instructions and cycles per class, most cycles first.
    pub by_class: Vec<(Class, u64, u64)>,
}

impl Estimate {
    /// Milliseconds at `mhz`.
    pub fn ms(&self, mhz: u32) -> f64 {
        self.cycles as f64 / (f64::from(mhz) * 1000.0)
    }
}

/// Estimates the cycles of the executions `counts` (address, times executed) of the code
/// in `elf` on `core`. Fails on an address the ELF does not hold.
pub fn estimate(core: Core, elf: &[u8], counts: &[(u32, u64)]) -> anyhow::Result<Estimate> {
    let executed: HashMap<u32, u64> = counts.iter().copied().collect();
    let decoded: HashMap<u32, Decoded> = counts
        .iter()
        .map(|&(at, _)| {
            let bytes = crate::elf::bytes_at(elf, at, 2)
                .ok_or_else(|| anyhow::anyhow!("the firmware holds no code at {at:#x}, where the profile counted"))?;
            let hw = u16::from_le_bytes([bytes[0], bytes[1]]);
            let hw2 = crate::elf::bytes_at(elf, at + 2, 2).map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
            Ok((at, decode(hw, hw2)))
        })
        .collect::<anyhow::Result<_>>()?;
    let is_memory = |class: Class| matches!(class, Class::Load | Class::Store);
    let mut by_class: HashMap<Class, (u64, u64)> = HashMap::new();
    let (mut instructions, mut cycles) = (0, 0);
    for (&at, &count) in &executed {
        let d = decoded[&at];
        let after_memory = [2, 4].into_iter().any(|back| {
            at.checked_sub(back)
                .and_then(|prev| decoded.get(&prev))
                .is_some_and(|p| p.size == back && is_memory(p.class))
        });
        let cost_of = |taken| cost(core, d.class, taken, after_memory && is_memory(d.class));
        let spent = if d.class == Class::CondBranch {
            let fall_through = executed.get(&(at + d.size)).copied().unwrap_or(0).min(count);
            fall_through * cost_of(false) + (count - fall_through) * cost_of(true)
        } else {
            count * cost_of(true)
        };
        let entry = by_class.entry(d.class).or_default();
        entry.0 += count;
        entry.1 += spent;
        instructions += count;
        cycles += spent;
    }
    let mut by_class: Vec<(Class, u64, u64)> = by_class.into_iter().map(|(c, (n, s))| (c, n, s)).collect();
    by_class.sort_by_key(|&(c, _, s)| (std::cmp::Reverse(s), c));
    Ok(Estimate { core, instructions, cycles, by_class })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(hw: u16, hw2: u16) -> Class {
        decode(hw, hw2).class
    }

    #[test]
    fn thumb_instructions_decode_to_their_class() {
        assert_eq!(class(0x4348, 0), Class::Multiply); // muls r0, r1, r0
        assert_eq!(class(0x7808, 0), Class::Load); // ldrb r0, [r1]
        assert_eq!(class(0x7008, 0), Class::Store); // strb r0, [r1]
        assert_eq!(class(0x5c08, 0), Class::Load); // ldrb r0, [r1, r0]
        assert_eq!(class(0xb5f0, 0), Class::Multiple(5)); // push {r4-r7, lr}
        assert_eq!(class(0xbdf0, 0), Class::PopPc(5)); // pop {r4-r7, pc}
        assert_eq!(class(0xd1fe, 0), Class::CondBranch); // bne
        assert_eq!(class(0xe7fe, 0), Class::Branch); // b
        assert_eq!(class(0x4770, 0), Class::Branch); // bx lr
        assert_eq!(class(0x4440, 0), Class::Alu); // add r0, r8
        assert_eq!(class(0xf000, 0xf800), Class::Call); // bl
        assert_eq!(class(0xfb20, 0x0000), Class::Multiply); // smlad
        assert_eq!(class(0xfb80, 0x0100), Class::LongMultiply); // smull
        assert_eq!(class(0xfbb0, 0xf0f1), Class::Divide); // udiv
        assert_eq!(class(0xf8d0, 0x0004), Class::Load); // ldr.w
        assert_eq!(class(0xe9d0, 0x0102), Class::Dual); // ldrd
        assert_eq!(class(0xfa2f, 0xf080), Class::Alu); // sxtb16
        assert_eq!(decode(0xf000, 0xf800).size, 4);
        assert_eq!(decode(0x4348, 0xf800).size, 2);
    }

    #[test]
    fn a_loop_costs_its_taken_branches_and_its_loads() {
        // A loop at 0x100 of `ldrb; muls; bne` run 10 times, the branch falling through once.
        let code = [0x08u8, 0x78, 0x48, 0x43, 0xfc, 0xd1, 0x00, 0xbf];
        let mut elf = vec![0u8; 0x200];
        let section = |elf: &mut Vec<u8>, at: usize, fields: [u32; 6]| {
            for (i, v) in fields.into_iter().enumerate() {
                elf[at + 4 * i..at + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
            }
        };
        elf[..6].copy_from_slice(b"\x7fELF\x01\x01");
        elf[0x20..0x24].copy_from_slice(&0x80u32.to_le_bytes());
        elf[0x2E..0x30].copy_from_slice(&40u16.to_le_bytes());
        elf[0x30..0x32].copy_from_slice(&2u16.to_le_bytes());
        // Section 1: PROGBITS, ALLOC | EXEC, at 0x100, file offset 0x180, 8 bytes.
        section(&mut elf, 0x80 + 40, [0, 1, 6, 0x100, 0x180, 8]);
        elf[0x180..0x188].copy_from_slice(&code);
        let counts = [(0x100, 10), (0x102, 10), (0x104, 10), (0x106, 1)];
        let m0 = estimate(Core::CortexM0Plus, &elf, &counts).unwrap();
        // 10 loads x 2, 10 multiplies, 9 taken branches x 2 + 1 not taken, 1 nop.
        assert_eq!(m0.instructions, 31);
        assert_eq!(m0.cycles, 20 + 10 + 18 + 1 + 1);
        let m4 = estimate(Core::CortexM4, &elf, &counts).unwrap();
        assert_eq!(m4.cycles, 20 + 10 + 9 * 3 + 1 + 1);
        assert!(estimate(Core::CortexM4, &elf, &[(0x300, 1)]).is_err());
        assert!((m0.ms(1) - 0.05).abs() < 1e-9);
    }
}

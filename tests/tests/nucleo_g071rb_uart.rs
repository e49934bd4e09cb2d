//! The NUCLEO-G071RB's board file (`firmware/src/boards/nucleo_g071rb.rs`) on the host,
//! against a model of the STM32G071's registers written from the reference manual
//! (RM0444), not from the board file: addresses, bit positions and the manual's rules
//! (the PLL configured only while off, 64 MHz only with two flash wait states, `BRR`
//! written only while the USART is disabled, `RDR` read only when `RXNE` says a byte is
//! there). No emulator runs the chip, so this is the board's serial check: every byte
//! written must leave in order, reads must return what arrived and never wait once they
//! have a byte, and the clock and pins must end up as the manual wants for 115200 baud.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

use embedded_io::{Read, Write};

#[allow(dead_code)] // `uart()` and `Mmio` touch the real chip: device only
#[path = "../../firmware/src/boards/nucleo_g071rb.rs"]
mod nucleo_g071rb;

use nucleo_g071rb::{Bus, setup};

// RM0444: the registers the board may touch.
const RCC_CR: usize = 0x4002_1000;
const RCC_CFGR: usize = 0x4002_1008;
const RCC_PLLCFGR: usize = 0x4002_100C;
const RCC_IOPENR: usize = 0x4002_1034;
const RCC_APBENR1: usize = 0x4002_103C;
const FLASH_ACR: usize = 0x4002_2000;
const GPIOA_MODER: usize = 0x5000_0000;
const GPIOA_AFRL: usize = 0x5000_0020;
const USART2_CR1: usize = 0x4000_4400;
const USART2_BRR: usize = 0x4000_440C;
const USART2_ISR: usize = 0x4000_441C;
const USART2_ICR: usize = 0x4000_4420;
const USART2_RDR: usize = 0x4000_4424;
const USART2_TDR: usize = 0x4000_4428;

/// The registers, the bytes sent and the bytes waiting to be read.
#[derive(Default)]
struct Chip {
    regs: RefCell<BTreeMap<usize, u32>>,
    sent: RefCell<Vec<u8>>,
    incoming: RefCell<VecDeque<u8>>,
    overrun: RefCell<bool>,
}

impl Chip {
    /// Reset values (RM0444): HSI16 on and ready, GPIOA pins in analog mode.
    fn new() -> Chip {
        let chip = Chip::default();
        chip.regs.borrow_mut().extend([(RCC_CR, 0x0000_0500), (GPIOA_MODER, 0xEBFF_FFFF), (RCC_PLLCFGR, 0x1000)]);
        chip
    }

    fn get(&self, register: usize) -> u32 {
        self.regs.borrow().get(&register).copied().unwrap_or(0)
    }

    fn sysclk_hz(&self) -> u32 {
        let pll = self.get(RCC_PLLCFGR);
        let (m, n, r) = ((pll >> 4 & 7) + 1, pll >> 8 & 0x7F, (pll >> 29 & 7) + 1);
        match self.get(RCC_CFGR) & 7 {
            0b010 => 16_000_000 / m * n / r,
            _ => 16_000_000,
        }
    }
}

impl Bus for &Chip {
    fn read(&self, register: usize) -> u32 {
        match register {
            // PLLRDY follows PLLON; the switch status follows the switch.
            RCC_CR => {
                let cr = self.get(RCC_CR);
                cr & !(1 << 25) | (cr >> 24 & 1) << 25
            }
            RCC_CFGR => {
                let cfgr = self.get(RCC_CFGR);
                cfgr & !(7 << 3) | (cfgr & 7) << 3
            }
            USART2_ISR => {
                let rxne = !self.incoming.borrow().is_empty();
                // The transmitter is always ready: TXE and TC.
                (1 << 7) | (1 << 6) | u32::from(rxne) << 5 | u32::from(*self.overrun.borrow()) << 3
            }
            USART2_RDR => {
                let byte = self.incoming.borrow_mut().pop_front();
                u32::from(byte.expect("RDR read while RXNE was clear: the byte returned would be stale"))
            }
            RCC_PLLCFGR | RCC_IOPENR | RCC_APBENR1 | FLASH_ACR | GPIOA_MODER | GPIOA_AFRL | USART2_CR1 | USART2_BRR => {
                self.get(register)
            }
            _ => panic!("read of {register:#010x}, a register this board has no business with"),
        }
    }

    fn write(&self, register: usize, value: u32) {
        match register {
            RCC_PLLCFGR => assert_eq!(self.get(RCC_CR) & (1 << 24), 0, "PLLCFGR written while the PLL ran"),
            RCC_CFGR if value & 7 == 0b010 => {
                assert!(self.get(FLASH_ACR) & 7 >= 2, "switched to the 64 MHz PLL with fewer than 2 wait states");
                assert_ne!(self.get(RCC_CR) & (1 << 24), 0, "switched to the PLL before it was on");
            }
            USART2_BRR => assert_eq!(self.get(USART2_CR1) & 1, 0, "BRR written while the USART was enabled"),
            USART2_TDR => {
                assert_eq!(self.get(USART2_CR1) & 0b1001, 0b1001, "TDR written with the USART or transmitter off");
                assert_ne!(self.get(RCC_APBENR1) & (1 << 17), 0, "TDR written with USART2's clock off");
                self.sent.borrow_mut().push(u8::try_from(value).expect("one byte per TDR write"));
                return;
            }
            USART2_ICR => {
                if value & (1 << 3) != 0 {
                    *self.overrun.borrow_mut() = false;
                }
                return;
            }
            RCC_CR | RCC_IOPENR | RCC_APBENR1 | FLASH_ACR | GPIOA_MODER | GPIOA_AFRL | USART2_CR1 => {}
            _ => panic!("write of {value:#x} to {register:#010x}, a register this board has no business with"),
        }
        self.regs.borrow_mut().insert(register, value);
    }
}

#[test]
fn the_clock_pins_and_baud_rate_follow_the_manual() {
    let chip = Chip::new();
    let _uart = setup(&chip);
    assert_eq!(chip.sysclk_hz(), 64_000_000);
    let pll = chip.get(RCC_PLLCFGR);
    assert_eq!(pll & 3, 0b10, "the PLL's source is HSI16");
    let vco = 16_000_000 / ((pll >> 4 & 7) + 1) * (pll >> 8 & 0x7F);
    assert!((64_000_000..=344_000_000).contains(&vco), "VCO at {vco} Hz");
    assert_ne!(pll & (1 << 28), 0, "the R output is on");
    assert_eq!(chip.get(FLASH_ACR) & 7, 2);
    // PA2 and PA3: alternate function mode, AF1; the other pins as they were.
    assert_eq!(chip.get(GPIOA_MODER), 0xEBFF_FFAF);
    assert_eq!(chip.get(GPIOA_AFRL) >> 8 & 0xFF, 0x11);
    assert_ne!(chip.get(RCC_IOPENR) & 1, 0);
    let baud = 64_000_000.0 / f64::from(chip.get(USART2_BRR));
    assert!((baud / 115_200.0 - 1.0).abs() < 0.01, "{baud} baud");
    assert_eq!(chip.get(USART2_CR1), 0b1101, "UE, RE and TE, nothing else");
}

#[test]
fn every_frame_length_is_sent_in_order() {
    let chip = Chip::new();
    let mut uart = setup(&chip);
    let mut expected = Vec::new();
    for len in 0..193usize {
        let frame: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        assert_eq!(uart.write(&frame).unwrap(), len);
        expected.extend(frame);
    }
    uart.write_all(b"\0constant in flash\0").unwrap();
    uart.flush().unwrap();
    expected.extend(b"\0constant in flash\0");
    assert_eq!(*chip.sent.borrow(), expected);
}

#[test]
fn reads_take_what_arrived_and_clear_an_overrun() {
    let chip = Chip::new();
    let mut uart = setup(&chip);
    chip.incoming.borrow_mut().extend([1, 2, 3, 4, 5]);
    *chip.overrun.borrow_mut() = true;
    let mut buf = [0u8; 3];
    assert_eq!(uart.read(&mut buf).unwrap(), 3);
    assert_eq!(buf, [1, 2, 3]);
    assert!(!*chip.overrun.borrow(), "the overrun flag stays set, and the USART stops receiving");
    // Two bytes left: a larger buffer gets them without waiting for more.
    let mut buf = [0u8; 10];
    assert_eq!(uart.read(&mut buf).unwrap(), 2);
    assert_eq!(buf[..2], [4, 5]);
    assert_eq!(uart.read(&mut []).unwrap(), 0);
    // One byte at a time, 100 of them.
    let bytes: Vec<u8> = (0..100).map(|i| (i * 13) as u8).collect();
    chip.incoming.borrow_mut().extend(bytes.iter().copied());
    let mut got = Vec::new();
    while got.len() < bytes.len() {
        let mut one = [0u8; 1];
        assert_eq!(uart.read(&mut one).unwrap(), 1);
        got.push(one[0]);
    }
    assert_eq!(got, bytes);
}

//! NUCLEO-G071RB: an STM32G071RB (Cortex-M0+, 128 KB of flash, 36 KB of RAM) at 64 MHz,
//! USART2 on PA2 (TX) and PA3 (RX), the ST-LINK's virtual COM port, 115200 baud.
//!
//! The chip is driven through its registers (reference manual RM0444), as `cmsdk_uart.rs`
//! drives the MPS2's UART: the clock tree (HSI16 through the PLL to 64 MHz, two flash
//! wait states, prefetch and instruction cache on), the pins (alternate function 1) and
//! the USART, polled, as `embedded_io::Read + Write`. Nothing else of the chip is used.
//!
//! Every register access goes through a [`Bus`]: the memory map on the device ([`Mmio`]),
//! a model of the registers in `tests/tests/nucleo_g071rb_uart.rs`, which runs this file
//! on the host, since no emulator runs the chip.

use core::convert::Infallible;
use core::ptr::{read_volatile, write_volatile};

const RCC: usize = 0x4002_1000;
const RCC_CR: usize = RCC;
const RCC_CFGR: usize = RCC + 0x08;
const RCC_PLLCFGR: usize = RCC + 0x0C;
const RCC_IOPENR: usize = RCC + 0x34;
const RCC_APBENR1: usize = RCC + 0x3C;
const FLASH_ACR: usize = 0x4002_2000;
const GPIOA_MODER: usize = 0x5000_0000;
const GPIOA_AFRL: usize = 0x5000_0020;
const USART2: usize = 0x4000_4400;
const USART_CR1: usize = USART2;
const USART_BRR: usize = USART2 + 0x0C;
const USART_ISR: usize = USART2 + 0x1C;
const USART_ICR: usize = USART2 + 0x20;
const USART_RDR: usize = USART2 + 0x24;
const USART_TDR: usize = USART2 + 0x28;

/// RCC_CR: PLL on and ready.
const PLLON: u32 = 1 << 24;
const PLLRDY: u32 = 1 << 25;
/// RCC_PLLCFGR: source HSI16 (0b10), M = 1 (field 0), N = 8, R = 2 (field 1), R output on:
/// 16 MHz x 8 / 2 = 64 MHz (VCO 128 MHz).
const PLL_64MHZ: u32 = 0b10 | (8 << 8) | (1 << 28) | (1 << 29);
/// RCC_CFGR: SW (bits 0..3) and SWS (bits 3..6) = PLLRCLK (0b010).
const SW_PLL: u32 = 0b010;
/// FLASH_ACR: 2 wait states (needed above 48 MHz), prefetch, instruction cache.
const ACR_64MHZ: u32 = 2 | (1 << 8) | (1 << 9);
/// USART ISR: overrun, receive register not empty, transmission complete, transmit
/// register empty.
const ORE: u32 = 1 << 3;
const RXNE: u32 = 1 << 5;
const TC: u32 = 1 << 6;
const TXE: u32 = 1 << 7;
/// USART CR1: enable, receiver, transmitter.
const UE_RE_TE: u32 = (1 << 0) | (1 << 2) | (1 << 3);

/// The clock USART2 runs from (PCLK = SYSCLK).
const CLOCK_HZ: u32 = 64_000_000;
const BAUD: u32 = 115_200;

/// 32-bit register reads and writes at the STM32G071's addresses.
pub trait Bus {
    fn read(&self, register: usize) -> u32;
    fn write(&self, register: usize, value: u32);

    /// Clears the bits `clear`, then sets `set`.
    fn modify(&self, register: usize, clear: u32, set: u32) {
        self.write(register, self.read(register) & !clear | set);
    }
}

/// The chip's own registers, by volatile access.
#[derive(Debug)]
pub struct Mmio {
    _private: (),
}

impl Bus for Mmio {
    fn read(&self, register: usize) -> u32 {
        // SAFETY: an `Mmio` exists only on the device (`uart()`), where every register
        // named above is a 32-bit register of the STM32G071's memory map, readable at any
        // time.
        unsafe { read_volatile(register as *const u32) }
    }

    fn write(&self, register: usize, value: u32) {
        // SAFETY: as in `read`; `boards::init` runs once and owns these peripherals.
        unsafe { write_volatile(register as *mut u32, value) }
    }
}

/// USART2, polled, over a [`Bus`].
#[derive(Debug)]
pub struct Usart<B: Bus> {
    bus: B,
}

/// The board's serial port.
pub type Uart = Usart<Mmio>;

pub(super) fn uart() -> Uart {
    setup(Mmio { _private: () })
}

/// Clocks the chip at 64 MHz and brings up USART2 on PA2/PA3, through `bus`.
pub fn setup<B: Bus>(bus: B) -> Usart<B> {
    // 64 MHz: wait states first, then the PLL, then the switch.
    bus.modify(FLASH_ACR, 0b111 | (1 << 8) | (1 << 9), ACR_64MHZ);
    while bus.read(FLASH_ACR) & 0b111 != 2 {}
    bus.write(RCC_PLLCFGR, PLL_64MHZ);
    bus.modify(RCC_CR, 0, PLLON);
    while bus.read(RCC_CR) & PLLRDY == 0 {}
    bus.modify(RCC_CFGR, 0b111, SW_PLL);
    while (bus.read(RCC_CFGR) >> 3) & 0b111 != SW_PLL {}

    // PA2 and PA3 in alternate function 1 (USART2).
    bus.modify(RCC_IOPENR, 0, 1 << 0);
    bus.modify(RCC_APBENR1, 0, 1 << 17);
    bus.modify(GPIOA_AFRL, 0xFF << 8, 0x11 << 8);
    bus.modify(GPIOA_MODER, 0b1111 << 4, 0b1010 << 4);
    bus.write(USART_BRR, CLOCK_HZ.div_ceil(BAUD));
    bus.write(USART_CR1, UE_RE_TE);
    Usart { bus }
}

impl<B: Bus> embedded_io::ErrorType for Usart<B> {
    type Error = Infallible;
}

impl<B: Bus> embedded_io::Read for Usart<B> {
    /// Waits for one byte, then takes whatever else has arrived, without waiting. An
    /// overrun (a byte lost while nobody read) is cleared; the frame check above notices
    /// the gap.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        let mut n = 0;
        for byte in buf.iter_mut() {
            loop {
                let status = self.bus.read(USART_ISR);
                if status & ORE != 0 {
                    self.bus.write(USART_ICR, ORE);
                }
                if status & RXNE != 0 {
                    break;
                }
                if n > 0 {
                    return Ok(n);
                }
            }
            *byte = self.bus.read(USART_RDR) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl<B: Bus> embedded_io::Write for Usart<B> {
    /// Sends every byte, waiting for room before each.
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        for &byte in buf {
            while self.bus.read(USART_ISR) & TXE == 0 {}
            self.bus.write(USART_TDR, u32::from(byte));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        while self.bus.read(USART_ISR) & TC == 0 {}
        Ok(())
    }
}

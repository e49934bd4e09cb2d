//! The Arm CMSDK APB UART of the MPS2 boards (and QEMU's model of it), as
//! `embedded_io::Read + Write`, by polling.
//!
//! Registers: DATA at +0x0, STATE at +0x4 (bit 0 TX buffer full, bit 1 RX buffer full),
//! CTRL at +0x8 (bit 0 TX enable, bit 1 RX enable), BAUDDIV at +0x10. Each direction has
//! a one-byte buffer; QEMU holds the host's next byte back until the guest has read the
//! previous one, so nothing is lost however fast the host sends.

use core::convert::Infallible;

const DATA: usize = 0x0;
const STATE: usize = 0x4;
const CTRL: usize = 0x8;
const BAUDDIV: usize = 0x10;
const TX_FULL: u32 = 1 << 0;
const RX_FULL: u32 = 1 << 1;
const TX_ENABLE: u32 = 1 << 0;
const RX_ENABLE: u32 = 1 << 1;

/// One CMSDK APB UART.
#[derive(Debug)]
pub struct CmsdkUart {
    base: usize,
}

impl CmsdkUart {
    /// Enables the UART at `base` for `baud` on a `clock_hz` peripheral clock.
    ///
    /// # Safety
    ///
    /// `base` must be the address of a CMSDK APB UART, and nothing else may use it.
    pub unsafe fn new(base: usize, clock_hz: u32, baud: u32) -> CmsdkUart {
        let uart = CmsdkUart { base };
        // The divisor must be at least 16 (QEMU rejects smaller ones).
        uart.write_reg(BAUDDIV, (clock_hz / baud).max(16));
        uart.write_reg(CTRL, TX_ENABLE | RX_ENABLE);
        uart
    }

    fn read_reg(&self, offset: usize) -> u32 {
        // SAFETY: `new`'s contract: `base` is this UART's register block, word-aligned.
        unsafe { core::ptr::read_volatile((self.base + offset) as *const u32) }
    }

    fn write_reg(&self, offset: usize, value: u32) {
        // SAFETY: as in `read_reg`; registers are written with volatile word stores.
        unsafe { core::ptr::write_volatile((self.base + offset) as *mut u32, value) }
    }

    fn rx_full(&self) -> bool {
        self.read_reg(STATE) & RX_FULL != 0
    }

    fn tx_full(&self) -> bool {
        self.read_reg(STATE) & TX_FULL != 0
    }
}

impl embedded_io::ErrorType for CmsdkUart {
    type Error = Infallible;
}

impl embedded_io::Read for CmsdkUart {
    /// Waits for one byte, then takes whatever else has arrived, without waiting.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        while !self.rx_full() {}
        let mut n = 0;
        while n < buf.len() && self.rx_full() {
            buf[n] = self.read_reg(DATA) as u8;
            n += 1;
        }
        Ok(n)
    }
}

impl embedded_io::Write for CmsdkUart {
    /// Waits for room for one byte, then sends as many as fit without waiting.
    fn write(&mut self, buf: &[u8]) -> Result<usize, Infallible> {
        if buf.is_empty() {
            return Ok(0);
        }
        while self.tx_full() {}
        let mut n = 0;
        while n < buf.len() && !self.tx_full() {
            self.write_reg(DATA, u32::from(buf[n]));
            n += 1;
        }
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), Infallible> {
        while self.tx_full() {}
        Ok(())
    }
}

//! nRF52840 DK: UARTE0 on P0.06 (TX) and P0.08 (RX), the pins the on-board J-Link
//! exposes as a USB serial port, 115200 baud.
//!
//! The UARTE only moves data by EasyDMA, which reads and writes RAM, never flash. This
//! module drives the HAL's unsplit, blocking [`Uarte::write`] and [`Uarte::read`], whose
//! contract is plain: a non-empty buffer in RAM. Every byte goes through a staging buffer
//! of our own in RAM, so callers may pass slices from flash (constant replies) too.
//!
//! It does not use the HAL's split `UarteTx` and its `embedded_io::Write`: in
//! nrf-hal-common 0.19 that copies the caller's bytes with `copy_from_slice` into the
//! *remaining* space of its buffer, so any write shorter than that space panics, which is
//! every frame `serve` sends. `tests/tests/nrf52840_uart.rs` runs this module on the host
//! against a simulated UARTE to keep it that way.

use embedded_io::ErrorType;
use nrf52840_hal::gpio::{Level, p0};
use nrf52840_hal::pac::{P0, UARTE0};
use nrf52840_hal::uarte::{self, Baudrate, Parity, Uarte};

/// Bytes moved per EasyDMA transfer on the way out: more than any frame `serve` sends
/// in one `write` (a response is at most 33 bytes), so one transfer per frame.
pub const TX_STAGE: usize = 64;

/// UARTE0 as one `embedded_io::Read + Write`, with its RAM staging buffers.
pub struct Uart {
    uarte: Uarte<UARTE0>,
    /// Invariant: in RAM (EasyDMA's source for every transmit).
    tx_stage: &'static mut [u8; TX_STAGE],
    /// Invariant: in RAM (EasyDMA's destination for every receive).
    rx_stage: &'static mut [u8; 1],
}

impl core::fmt::Debug for Uart {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Uart(UARTE0)")
    }
}

#[cfg(target_os = "none")]
pub(super) fn uart() -> Uart {
    let p = nrf52840_hal::pac::Peripherals::take().expect("boards::init runs once");
    // `singleton!` places both buffers in static RAM, as EasyDMA needs.
    let tx_stage = cortex_m::singleton!(: [u8; TX_STAGE] = [0; TX_STAGE]).expect("boards::init runs once");
    let rx_stage = cortex_m::singleton!(: [u8; 1] = [0; 1]).expect("boards::init runs once");
    Uart::new(p.UARTE0, p.P0, tx_stage, rx_stage)
}

impl Uart {
    /// Configures UARTE0 on the DK's pins at 115200 baud, 8N1, no flow control.
    ///
    /// Both staging buffers must be in RAM (the HAL refuses a transmit from anywhere
    /// else with `BufferNotInRAM`).
    pub fn new(
        uarte0: UARTE0,
        port0: P0,
        tx_stage: &'static mut [u8; TX_STAGE],
        rx_stage: &'static mut [u8; 1],
    ) -> Self {
        let port0 = p0::Parts::new(port0);
        let pins = uarte::Pins {
            txd: port0.p0_06.into_push_pull_output(Level::High).degrade(),
            rxd: port0.p0_08.into_floating_input().degrade(),
            cts: None,
            rts: None,
        };
        let uarte = Uarte::new(uarte0, pins, Parity::EXCLUDED, Baudrate::BAUD115200);
        Uart { uarte, tx_stage, rx_stage }
    }
}

impl ErrorType for Uart {
    type Error = uarte::Error;
}

impl embedded_io::Read for Uart {
    /// Blocks until one byte arrives (`serve` reads byte by byte into its frame decoder).
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, uarte::Error> {
        let Some(first) = buf.first_mut() else { return Ok(0) };
        self.uarte.read(&mut self.rx_stage[..])?;
        *first = self.rx_stage[0];
        Ok(1)
    }
}

impl embedded_io::Write for Uart {
    /// Sends up to [`TX_STAGE`] bytes and blocks until they have left; returns how many.
    fn write(&mut self, buf: &[u8]) -> Result<usize, uarte::Error> {
        let n = buf.len().min(TX_STAGE);
        if n == 0 {
            return Ok(0); // the HAL refuses empty transfers; embedded-io allows them
        }
        let stage = &mut self.tx_stage[..n];
        stage.copy_from_slice(&buf[..n]);
        self.uarte.write(stage)?;
        Ok(n)
    }

    /// Nothing to do: every `write` waits for its transfer to end.
    fn flush(&mut self) -> Result<(), uarte::Error> {
        Ok(())
    }
}

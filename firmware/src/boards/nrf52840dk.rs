//! nRF52840 DK: UARTE0 on P0.06 (TX) and P0.08 (RX), the pins the on-board J-Link
//! exposes as a USB serial port, 115200 baud. The HAL implements `embedded-io` itself;
//! this only pairs its two halves.

use embedded_io::ErrorType;
use nrf52840_hal::gpio::{Level, p0};
use nrf52840_hal::pac::{self, UARTE0};
use nrf52840_hal::uarte::{self, Baudrate, Parity, Uarte, UarteRx, UarteTx};

/// UARTE0's transmit and receive halves as one `embedded_io::Read + Write`.
pub struct Uart {
    tx: UarteTx<UARTE0>,
    rx: UarteRx<UARTE0>,
}

impl core::fmt::Debug for Uart {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Uart(UARTE0)")
    }
}

pub(super) fn uart() -> Uart {
    let p = pac::Peripherals::take().expect("boards::init runs once");
    let port0 = p0::Parts::new(p.P0);
    let pins = uarte::Pins {
        txd: port0.p0_06.into_push_pull_output(Level::High).degrade(),
        rxd: port0.p0_08.into_floating_input().degrade(),
        cts: None,
        rts: None,
    };
    let uarte = Uarte::new(p.UARTE0, pins, Parity::EXCLUDED, Baudrate::BAUD115200);
    // EasyDMA reads and writes these buffers, so they must live in RAM for good.
    let tx_buf = cortex_m::singleton!(: [u8; 64] = [0; 64]).expect("boards::init runs once");
    let rx_buf = cortex_m::singleton!(: [u8; 1] = [0; 1]).expect("boards::init runs once");
    let (tx, rx) = uarte.split(tx_buf, rx_buf).expect("UARTE0 buffers are in RAM");
    Uart { tx, rx }
}

impl ErrorType for Uart {
    type Error = uarte::Error;
}

impl embedded_io::Read for Uart {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, uarte::Error> {
        self.rx.read(buf)
    }
}

impl embedded_io::Write for Uart {
    fn write(&mut self, buf: &[u8]) -> Result<usize, uarte::Error> {
        self.tx.write(buf)
    }

    fn flush(&mut self) -> Result<(), uarte::Error> {
        self.tx.flush()
    }
}

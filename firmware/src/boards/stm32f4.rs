//! STM32F405 (QEMU's `netduinoplus2`): USART1 on PA9 (TX) and PA10 (RX), 115200 baud, on
//! the 16 MHz HSI clock the chip starts with. Setting up the PLL would be faster on a real
//! board but hangs under QEMU, which does not emulate the RCC.

use embedded_hal_nb::serial::{Read as _, Write as _};
use embedded_io::ErrorKind;
use stm32f4xx_hal::pac::{self, USART1};
use stm32f4xx_hal::prelude::*;
use stm32f4xx_hal::serial::Serial;

/// USART1 as `embedded_io::Read + Write`: the HAL only has the byte-wise `nb` traits.
pub struct Uart(Serial<USART1>);

impl core::fmt::Debug for Uart {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Uart(USART1)")
    }
}

pub(super) fn uart() -> Uart {
    let dp = pac::Peripherals::take().expect("boards::init runs once");
    let mut rcc = dp.RCC.constrain();
    let gpioa = dp.GPIOA.split(&mut rcc);
    let serial = dp.USART1.serial((gpioa.pa9, gpioa.pa10), 115_200.bps(), &mut rcc);
    Uart(serial.expect("115200 baud is reachable from the HSI clock"))
}

impl embedded_io::ErrorType for Uart {
    /// Overrun, framing, parity or noise: the byte is lost, the port still works.
    type Error = ErrorKind;
}

impl embedded_io::Read for Uart {
    /// Waits for one byte, then takes whatever else has arrived, without waiting.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        let Some((first, rest)) = buf.split_first_mut() else { return Ok(0) };
        *first = nb::block!(self.0.read()).map_err(|_| ErrorKind::Other)?;
        let mut n = 1;
        for byte in rest {
            match self.0.read() {
                Ok(b) => *byte = b,
                Err(nb::Error::WouldBlock) => break,
                Err(nb::Error::Other(_)) => return Err(ErrorKind::Other),
            }
            n += 1;
        }
        Ok(n)
    }
}

impl embedded_io::Write for Uart {
    /// Waits for room for one byte, then sends as many as fit without waiting.
    fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        let Some((&first, rest)) = buf.split_first() else { return Ok(0) };
        nb::block!(self.0.write(first)).map_err(|_| ErrorKind::Other)?;
        let mut n = 1;
        for &byte in rest {
            match self.0.write(byte) {
                Ok(()) => n += 1,
                Err(nb::Error::WouldBlock) => break,
                Err(nb::Error::Other(_)) => return Err(ErrorKind::Other),
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> Result<(), ErrorKind> {
        nb::block!(self.0.flush()).map_err(|_| ErrorKind::Other)
    }
}

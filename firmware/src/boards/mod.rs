//! One small module per board: clocks, pins and the UART, nothing else. Exactly one is
//! compiled, chosen by a cargo feature (`build.rs` checks that there is exactly one).
//!
//! Each board module has `init() -> Board`; the application only ever sees the UART as
//! `embedded_io::Read + Write`.

#[cfg(any(feature = "qemu-m4", feature = "qemu-m7", feature = "qemu-m0plus"))]
pub mod cmsdk_uart;

#[cfg(feature = "nrf52840dk")]
mod nrf52840dk;
#[cfg(feature = "nucleo-g071rb")]
mod nucleo_g071rb;
#[cfg(feature = "qemu-m0plus")]
mod qemu_m0plus;
#[cfg(feature = "qemu-m4")]
mod qemu_m4;
#[cfg(feature = "qemu-m7")]
mod qemu_m7;
#[cfg(feature = "stm32f4")]
mod stm32f4;

#[cfg(feature = "nrf52840dk")]
use nrf52840dk as board;
#[cfg(feature = "nucleo-g071rb")]
use nucleo_g071rb as board;
#[cfg(feature = "qemu-m0plus")]
use qemu_m0plus as board;
#[cfg(feature = "qemu-m4")]
use qemu_m4 as board;
#[cfg(feature = "qemu-m7")]
use qemu_m7 as board;
#[cfg(feature = "stm32f4")]
use stm32f4 as board;

pub use board::Uart;

/// What the application gets from the board.
#[derive(Debug)]
pub struct Board {
    /// The serial port `serve` talks over.
    pub uart: Uart,
}

/// Brings up the board: clocks (where there is anything to set) and the UART. Call once.
pub fn init() -> Board {
    Board { uart: board::uart() }
}

//! QEMU `mps2-an500`: an Arm MPS2 FPGA board with a Cortex-M7. QEMU's `-serial` is
//! UART0; there are no clocks to set.

use super::cmsdk_uart::CmsdkUart;

/// UART0.
pub type Uart = CmsdkUart;

const UART0: usize = 0x4000_4000;
/// The MPS2 peripheral clock.
const CLOCK_HZ: u32 = 25_000_000;

pub(super) fn uart() -> Uart {
    // SAFETY: UART0 of the MPS2 memory map; `boards::init` runs once and owns it.
    unsafe { CmsdkUart::new(UART0, CLOCK_HZ, 115_200) }
}

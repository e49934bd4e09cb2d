//! QEMU `mps2-an385`: an Arm MPS2 FPGA board with a Cortex-M3, running firmware built for
//! `thumbv6m-none-eabi`. ARMv6-M code is a subset of what the M3 executes, so the
//! program and its exact instruction counts are a Cortex-M0+'s; only timing differs
//! (and QEMU does not model timing). QEMU's `-serial` is UART0; there are no clocks to set.

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

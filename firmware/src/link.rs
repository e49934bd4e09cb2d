//! How the firmware reports to whoever runs it: defmt logs, the exit code, panics.
//!
//! Under QEMU (feature `qemu`) logs go out over semihosting and the exit code reaches the
//! shell through `SYS_EXIT_EXTENDED`. On a real board (feature `rtt`) logs go to an RTT
//! buffer that probe-rs reads, and exiting stops at a breakpoint, which ends `probe-rs run`.
//! `DEFMT_LOG` selects the level at build time (`info` unless set).

#[cfg(feature = "rtt")]
use defmt_rtt as _;
#[cfg(feature = "qemu")]
use defmt_semihosting as _;

/// The exit code of a panic, as for a panicking Rust program on a host.
pub const PANIC_EXIT_CODE: i32 = 101;

/// Ends the program with `code` (0 is success).
pub fn exit(code: i32) -> ! {
    #[cfg(feature = "qemu")]
    semihosting::process::exit(code);
    #[cfg(not(feature = "qemu"))]
    {
        // A debugger (probe-rs) stops here and reports; the code is in the last log line.
        let _ = code;
        loop {
            cortex_m::asm::bkpt();
        }
    }
}

/// Reports the panic through defmt and exits with [`PANIC_EXIT_CODE`], so a runner sees
/// a failure instead of QEMU hanging.
///
/// It logs the location and the message only when the message is a plain string: a
/// formatted message would pull `core::fmt` into the image, about 8 KB of flash.
/// The firmware's own panics log their values through defmt first (`defmt::panic!`).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let message = info.message().as_str().unwrap_or("(formatted message not shown)");
    match info.location() {
        Some(at) => defmt::error!("panic at {=str}:{=u32}: {=str}", at.file(), at.line(), message),
        None => defmt::error!("panic: {=str}", message),
    }
    exit(PANIC_EXIT_CODE)
}

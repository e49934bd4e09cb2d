//! The stack's high-water mark. cortex-m-rt (feature `paint-stack`) fills the stack with
//! a known word before `main`; the deepest word that no longer holds it shows how much
//! stack the program has used so far.

use cortex_m_rt::STACK_PAINT_VALUE;

unsafe extern "C" {
    /// The lowest address the stack may grow to (cortex-m-rt's linker script).
    static _stack_end: u32;
    /// The initial stack pointer, the top of the stack.
    static _stack_start: u32;
}

/// Bytes of stack used so far, at most.
pub fn peak_bytes() -> usize {
    let end = (&raw const _stack_end) as usize;
    let start = (&raw const _stack_start) as usize;
    let mut at = end;
    while at < start {
        // SAFETY: `[_stack_end, _stack_start)` is RAM the linker reserved for the stack and
        // cortex-m-rt painted; `at` stays word-aligned inside it. A volatile read, because
        // the compiler must not assume what the stack holds.
        let word = unsafe { core::ptr::read_volatile(at as *const u32) };
        if word != STACK_PAINT_VALUE {
            break;
        }
        at += 4;
    }
    start - at
}

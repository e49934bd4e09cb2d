//! The nRF52840 DK's serial glue (`firmware/src/boards/nrf52840dk.rs`), run on the host
//! with the real nrf-hal-common driver against a simulated UARTE0.
//!
//! No emulator runs an nRF52840, so this is the board's serial check: the HAL's own
//! code touches registers and RAM at their real addresses, which the test maps into
//! the process (`mmap` at fixed addresses), and a thread plays the peripheral: it
//! carries out STARTTX/STOPTX/STARTRX by EasyDMA's rules (RAM only, `MAXCNT` bytes)
//! and raises the events the driver waits for. Every byte sent must arrive in order,
//! and nothing may panic: the HAL's split `UarteTx` (which this board used before)
//! panics here on the first frame shorter than its buffer.
#![cfg(all(target_os = "linux", target_pointer_width = "64"))]

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use embedded_io::{Read, Write};
use nrf52840_hal::pac;

#[allow(dead_code)] // `uart()` takes the real peripherals: device only
#[path = "../../firmware/src/boards/nrf52840dk.rs"]
mod nrf52840dk;

/// The nRF52840's data RAM, where EasyDMA may read and write (256 KiB from here).
const RAM: usize = 0x2000_0000;
/// The part of it the test maps: the staging buffers live here.
const RAM_LEN: usize = 0x1000;
/// One page of registers each: UARTE0 and GPIO port 0.
const UARTE0: usize = 0x4000_2000;
const P0: usize = 0x5000_0000;
const PAGE: usize = 0x1000;

/// Maps `len` zeroed bytes at exactly `addr`, or says why it cannot.
fn map_fixed(addr: usize, len: usize) {
    // SAFETY: MAP_FIXED_NOREPLACE never replaces an existing mapping; the result is
    // checked, and the memory is never unmapped (the process owns it until it exits).
    let got = unsafe {
        libc::mmap(
            addr as *mut libc::c_void,
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        )
    };
    assert_eq!(got as usize, addr, "cannot map {len:#x} bytes at {addr:#x} for the simulated nRF52840");
}

/// A 32-bit register of UARTE0, by its offset in the register block.
fn reg(offset: usize) -> &'static AtomicU32 {
    // SAFETY: UARTE0's page is mapped for the process's life and the offset is a
    // register's, 4-byte aligned; the driver uses the same words with volatile accesses.
    unsafe { AtomicU32::from_ptr((UARTE0 + offset) as *mut u32) }
}

/// The UARTE0 register offsets the simulator serves, taken from the PAC itself.
struct Regs {
    tasks_startrx: usize,
    tasks_starttx: usize,
    tasks_stoptx: usize,
    events_endrx: usize,
    events_endtx: usize,
    events_rxstarted: usize,
    events_txstarted: usize,
    events_txstopped: usize,
    rxd_ptr: usize,
    rxd_maxcnt: usize,
    rxd_amount: usize,
    txd_ptr: usize,
    txd_maxcnt: usize,
    txd_amount: usize,
}

impl Regs {
    fn of_pac() -> Self {
        let block = pac::UARTE0::PTR;
        let at = |field: *const u8| field as usize - block as usize;
        // SAFETY: only field addresses are taken; nothing is read.
        unsafe {
            Regs {
                tasks_startrx: at(std::ptr::addr_of!((*block).tasks_startrx).cast()),
                tasks_starttx: at(std::ptr::addr_of!((*block).tasks_starttx).cast()),
                tasks_stoptx: at(std::ptr::addr_of!((*block).tasks_stoptx).cast()),
                events_endrx: at(std::ptr::addr_of!((*block).events_endrx).cast()),
                events_endtx: at(std::ptr::addr_of!((*block).events_endtx).cast()),
                events_rxstarted: at(std::ptr::addr_of!((*block).events_rxstarted).cast()),
                events_txstarted: at(std::ptr::addr_of!((*block).events_txstarted).cast()),
                events_txstopped: at(std::ptr::addr_of!((*block).events_txstopped).cast()),
                rxd_ptr: at(std::ptr::addr_of!((*block).rxd.ptr).cast()),
                rxd_maxcnt: at(std::ptr::addr_of!((*block).rxd.maxcnt).cast()),
                rxd_amount: at(std::ptr::addr_of!((*block).rxd.amount).cast()),
                txd_ptr: at(std::ptr::addr_of!((*block).txd.ptr).cast()),
                txd_maxcnt: at(std::ptr::addr_of!((*block).txd.maxcnt).cast()),
                txd_amount: at(std::ptr::addr_of!((*block).txd.amount).cast()),
            }
        }
    }
}

/// What the simulated peripheral saw and what it holds for the receiver.
#[derive(Default)]
struct Wire {
    /// Bytes transmitted, in order.
    sent: Vec<u8>,
    /// Bytes waiting to be received.
    incoming: Vec<u8>,
    /// EasyDMA rule violations (a transfer outside the mapped RAM, an empty one).
    faults: Vec<String>,
}

/// Runs UARTE0 until `stop`: one task at a time, as the driver starts them.
fn peripheral(regs: Regs, wire: Arc<Mutex<Wire>>, stop: Arc<AtomicBool>) {
    let in_ram = |ptr: usize, len: usize| ptr >= RAM && ptr + len <= RAM + RAM_LEN;
    while !stop.load(Ordering::Acquire) {
        if reg(regs.tasks_starttx).swap(0, Ordering::AcqRel) != 0 {
            let ptr = reg(regs.txd_ptr).load(Ordering::Acquire) as usize;
            let len = reg(regs.txd_maxcnt).load(Ordering::Acquire) as usize;
            let mut wire = wire.lock().unwrap();
            if len == 0 || !in_ram(ptr, len) {
                wire.faults.push(format!("transmit of {len} bytes from {ptr:#x}"));
            } else {
                // SAFETY: the range lies in the mapped RAM page.
                let bytes = unsafe { std::slice::from_raw_parts(ptr as *const u8, len) };
                wire.sent.extend_from_slice(bytes);
            }
            reg(regs.txd_amount).store(len as u32, Ordering::Release);
            reg(regs.events_txstarted).store(1, Ordering::Release);
            reg(regs.events_endtx).store(1, Ordering::Release);
        }
        if reg(regs.tasks_stoptx).swap(0, Ordering::AcqRel) != 0 {
            reg(regs.events_txstopped).store(1, Ordering::Release);
        }
        if reg(regs.events_rxstarted).load(Ordering::Acquire) == 0
            && reg(regs.tasks_startrx).load(Ordering::Acquire) != 0
        {
            reg(regs.events_rxstarted).store(1, Ordering::Release);
        }
        if reg(regs.events_rxstarted).load(Ordering::Acquire) != 0
            && reg(regs.events_endrx).load(Ordering::Acquire) == 0
            && reg(regs.tasks_startrx).load(Ordering::Acquire) != 0
        {
            let mut wire = wire.lock().unwrap();
            let ptr = reg(regs.rxd_ptr).load(Ordering::Acquire) as usize;
            let len = reg(regs.rxd_maxcnt).load(Ordering::Acquire) as usize;
            if len == 0 || !in_ram(ptr, len) {
                wire.faults.push(format!("receive of {len} bytes into {ptr:#x}"));
                reg(regs.tasks_startrx).store(0, Ordering::Release);
            } else if wire.incoming.len() >= len {
                let bytes: Vec<u8> = wire.incoming.drain(..len).collect();
                // SAFETY: the range lies in the mapped RAM page.
                unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr as *mut u8, len) };
                reg(regs.tasks_startrx).store(0, Ordering::Release);
                reg(regs.rxd_amount).store(len as u32, Ordering::Release);
                reg(regs.events_endrx).store(1, Ordering::Release);
            }
        }
        thread::yield_now();
    }
}

#[test]
fn serial_glue_keeps_the_drivers_contract() {
    map_fixed(RAM, RAM_LEN);
    map_fixed(UARTE0, PAGE);
    map_fixed(P0, PAGE);

    let wire = Arc::new(Mutex::new(Wire::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let sim = {
        let (wire, stop) = (wire.clone(), stop.clone());
        thread::spawn(move || peripheral(Regs::of_pac(), wire, stop))
    };

    // SAFETY: the test is the only user of these mapped peripherals, and the buffers
    // are distinct, aligned parts of the mapped RAM page, used by nothing else.
    let (p, tx_stage, rx_stage) = unsafe {
        (
            pac::Peripherals::steal(),
            &mut *(RAM as *mut [u8; nrf52840dk::TX_STAGE]),
            &mut *((RAM + 0x800) as *mut [u8; 1]),
        )
    };
    let mut uart = nrf52840dk::Uart::new(p.UARTE0, p.P0, tx_stage, rx_stage);

    // Frames as `serve` writes them (every length up to three transfers), some from
    // constants, which on the device live in flash where EasyDMA cannot read.
    const REPLY: &[u8] = b"\x00fitnets constant reply\x00";
    let mut expected = Vec::new();
    let started = Instant::now();
    uart.write_all(REPLY).unwrap();
    expected.extend_from_slice(REPLY);
    for len in 0..=3 * nrf52840dk::TX_STAGE + 1 {
        let frame: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
        uart.write_all(&frame).unwrap();
        uart.flush().unwrap();
        expected.extend_from_slice(&frame);
    }
    assert_eq!(uart.write(&[]).unwrap(), 0, "an empty write sends nothing");

    // Bytes in, one read at a time as `serve`'s frame decoder does.
    let incoming: Vec<u8> = (0..100u8).map(|i| i.wrapping_mul(37)).collect();
    wire.lock().unwrap().incoming.extend_from_slice(&incoming);
    let mut received = Vec::new();
    while received.len() < incoming.len() {
        let mut byte = [0u8; 4];
        let n = uart.read(&mut byte).unwrap();
        assert_eq!(n, 1, "the glue reads one byte per call");
        received.push(byte[0]);
        assert!(started.elapsed() < Duration::from_secs(60), "the simulated UART stalled");
    }

    stop.store(true, Ordering::Release);
    sim.join().unwrap();
    let wire = wire.lock().unwrap();
    assert!(wire.faults.is_empty(), "EasyDMA rules broken: {:?}", wire.faults);
    assert_eq!(wire.sent, expected, "the bytes on the wire differ from those written");
    assert_eq!(received, incoming);
}

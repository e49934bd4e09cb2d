//! Serve mode: answers `shared::wire` frames on the board's UART, forever.
#![no_std]
#![no_main]

use fitnets_firmware::model::{RX_FRAME_BYTES, TX_FRAME_BYTES};
use fitnets_firmware::{app, boards};

// A model this program cannot fit on the board stops its build here, with the numbers.
const _: () = fitnets_firmware::app::assert_fits(fitnets_firmware::model::SERVE_MISFIT);

#[cortex_m_rt::entry]
fn main() -> ! {
    let mut board = boards::init();
    let model = app::embedded_model();
    // Static, like the arena, so the ELF's RAM figure shows them.
    let rx = cortex_m::singleton!(: [u8; RX_FRAME_BYTES] = [0; RX_FRAME_BYTES]).expect("main runs once");
    let tx = cortex_m::singleton!(: [u8; TX_FRAME_BYTES] = [0; TX_FRAME_BYTES]).expect("main runs once");
    app::serve::run(&mut board.uart, &model, app::arena(), rx, tx)
}

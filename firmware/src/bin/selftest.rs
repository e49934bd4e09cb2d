//! Self-test mode: checks the embedded model against the host's results and exits with
//! the verdict (0 when every image matches the host bit for bit).
#![no_std]
#![no_main]

use fitnets_firmware::model::INPUT_BYTES;
use fitnets_firmware::{app, boards, link};

// A model this program cannot fit on the board stops its build here, with the numbers.
const _: () = fitnets_firmware::app::assert_fits(fitnets_firmware::model::SELFTEST_MISFIT);

#[cortex_m_rt::entry]
fn main() -> ! {
    let _board = boards::init();
    let model = app::embedded_model();
    // Static, like the arena, so the ELF's RAM figure shows it.
    let pixels = cortex_m::singleton!(: [u8; INPUT_BYTES] = [0; INPUT_BYTES]).expect("main runs once");
    let code = app::selftest::run(&model, app::arena(), pixels);
    link::exit(code)
}

//! The boards the firmware supports, and how each is built, emulated and flashed.

use anyhow::bail;

/// One board: a cargo feature of the firmware, plus what runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Board {
    /// The firmware's cargo feature, and the name every subcommand takes.
    pub name: &'static str,
    /// The QEMU machine (and CPU, when the machine's default is not the one we want)
    /// that emulates it, if any.
    pub qemu: Option<Qemu>,
    /// probe-rs's name for the chip, for real boards.
    pub chip: Option<&'static str>,
    /// The Rust target the firmware is built for.
    pub target: &'static str,
}

/// A QEMU machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Qemu {
    /// `-machine`.
    pub machine: &'static str,
    /// `-cpu`, when the machine's default CPU is not the board's.
    pub cpu: Option<&'static str>,
}

/// Cortex-M4F and M7: ARMv7E-M with the DSP extension and an FPU.
const V7EM: &str = "thumbv7em-none-eabihf";
/// Cortex-M0 and M0+: ARMv6-M.
pub const V6M: &str = "thumbv6m-none-eabi";

/// Every board, in the order reports list them.
pub const BOARDS: [Board; 6] = [
    Board {
        name: "qemu-m4",
        qemu: Some(Qemu { machine: "mps2-an386", cpu: Some("cortex-m4") }),
        chip: None,
        target: V7EM,
    },
    Board {
        name: "qemu-m7",
        qemu: Some(Qemu { machine: "mps2-an500", cpu: Some("cortex-m7") }),
        chip: None,
        target: V7EM,
    },
    Board {
        name: "stm32f4",
        qemu: Some(Qemu { machine: "netduinoplus2", cpu: None }),
        chip: Some("STM32F405RGTx"),
        target: V7EM,
    },
    Board { name: "nrf52840dk", qemu: None, chip: Some("nRF52840_xxAA"), target: V7EM },
    // A Cortex-M3 machine running ARMv6-M code: a Cortex-M0+'s instructions, counted
    // exactly (QEMU has no M0+ machine with a UART we drive).
    Board { name: "qemu-m0plus", qemu: Some(Qemu { machine: "mps2-an385", cpu: None }), chip: None, target: V6M },
    Board { name: "nucleo-g071rb", qemu: None, chip: Some("STM32G071RBTx"), target: V6M },
];

/// Where the firmware sends its logs and exit code; part of how it is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// Semihosting: under QEMU.
    Qemu,
    /// RTT: a real board under probe-rs.
    Rtt,
}

impl Transport {
    /// The firmware's cargo feature for it.
    pub fn feature(self) -> &'static str {
        match self {
            Transport::Qemu => "qemu",
            Transport::Rtt => "rtt",
        }
    }
}

/// The board called `name`.
pub fn find(name: &str) -> anyhow::Result<Board> {
    match BOARDS.iter().find(|b| b.name == name) {
        Some(board) => Ok(*board),
        None => bail!("unknown board `{name}`; the boards are {}", names(|_| true)),
    }
}

/// The names of the boards that `keep` accepts, for messages.
pub fn names(keep: impl Fn(&Board) -> bool) -> String {
    BOARDS.iter().filter(|b| keep(b)).map(|b| b.name).collect::<Vec<_>>().join(", ")
}

impl Board {
    /// The transport it is built with when nothing says otherwise: semihosting where QEMU
    /// emulates the board, RTT elsewhere.
    pub fn default_transport(self) -> Transport {
        if self.qemu.is_some() { Transport::Qemu } else { Transport::Rtt }
    }

    /// This board under QEMU, or an error naming the boards QEMU has.
    pub fn qemu(self) -> anyhow::Result<Qemu> {
        match self.qemu {
            Some(qemu) => Ok(qemu),
            None => {
                bail!("QEMU does not emulate {}; the emulated boards are {}", self.name, names(|b| b.qemu.is_some()))
            }
        }
    }
}

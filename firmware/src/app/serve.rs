//! Serve: reads [`fitnets_shared::wire`] frames from a byte stream and answers every one,
//! forever.
//!
//! Every non-empty frame gets exactly one response frame: `Info`, a `Prediction`, or an
//! `Error` for a frame that is malformed (`BadFrame`), longer than any valid request
//! (`TooLong`) or holds an image of the wrong size (`InputLength`). Nothing a host sends
//! stops the loop: a read or write error is logged and the loop goes on.

use embedded_io::{Error as _, Read, Write};
use fitnets_shared::wire::{self, Accumulator, ErrorCode, ModelInfo, Push, Request, Response};
use fitnets_shared::{Model, RunError};

use crate::model;

/// Answers frames from `uart` for ever. `rx` holds one request frame body (at least
/// [`model::RX_FRAME_BYTES`]), `tx` one response frame (at least
/// [`model::TX_FRAME_BYTES`]).
pub fn run<U: Read + Write>(uart: &mut U, model: &Model<'_>, arena: &mut [u8], rx: &mut [u8], tx: &mut [u8]) -> ! {
    defmt::info!("serving on the UART: requests up to {=usize} bytes, responses up to {=usize}", rx.len(), tx.len());
    let mut frames = Accumulator::new(rx);
    let mut chunk = [0u8; 32];
    let mut answered: u32 = 0;
    loop {
        let n = match uart.read(&mut chunk) {
            Ok(n) => n,
            Err(e) => {
                defmt::warn!("UART read failed: {}", e.kind());
                continue;
            }
        };
        for &byte in &chunk[..n] {
            let response = match frames.push(byte) {
                Push::Pending => continue,
                Push::Overflow => {
                    defmt::debug!("frame {=u32}: longer than {=usize} bytes", answered, model::RX_FRAME_BYTES);
                    Response::Error(ErrorCode::TooLong)
                }
                Push::Frame(len) => answer(model, frames.frame(len), arena, answered),
            };
            send(uart, &response, tx);
            answered = answered.wrapping_add(1);
        }
    }
}

/// The response to one frame body (delimiter excluded); `index` only labels the logs.
pub fn answer<'r>(model: &Model<'r>, frame: &mut [u8], arena: &'r mut [u8], index: u32) -> Response<'r> {
    let request = match wire::decode::<Request<'_>>(frame) {
        Ok(request) => request,
        Err(e) => {
            defmt::debug!("frame {=u32}: {}", index, e);
            return Response::Error(ErrorCode::BadFrame);
        }
    };
    match request {
        Request::Info => Response::Info(ModelInfo::of(model)),
        Request::Classify { pixels } => match fitnets_shared::run(model, pixels, arena) {
            Ok(prediction) => {
                defmt::debug!("frame {=u32}: class {=u16}", index, prediction.class);
                Response::Prediction { class: prediction.class, logits: bytemuck::cast_slice(prediction.logits) }
            }
            Err(RunError::InputLength { expected, found }) => {
                defmt::debug!("frame {=u32}: {=u32} pixels, the model takes {=u32}", index, found, expected);
                Response::Error(ErrorCode::InputLength)
            }
            Err(e) => {
                defmt::error!("frame {=u32}: {}", index, e);
                Response::Error(ErrorCode::Internal)
            }
        },
    }
}

/// Encodes and writes one response; failures are logged, never fatal.
fn send<U: Write>(uart: &mut U, response: &Response<'_>, tx: &mut [u8]) {
    let frame = match wire::encode(response, tx) {
        Ok(frame) => frame,
        // build.rs sized `tx` for the longest response, so this is a bug; still answer.
        Err(e) => {
            defmt::error!("cannot encode a response: {}", e);
            match wire::encode(&Response::Error(ErrorCode::Internal), tx) {
                Ok(frame) => frame,
                Err(_) => return,
            }
        }
    };
    if let Err(e) = uart.write_all(frame).and_then(|()| uart.flush()) {
        defmt::warn!("UART write failed: {}", e.kind());
    }
}

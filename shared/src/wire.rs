//! Frames between host and device over a byte stream (a UART).
//!
//! A frame is `COBS(postcard(message) ++ CRC-32(postcard(message)) LE) ++ 0x00`. COBS
//! removes every zero byte from the frame body, so `0x00` delimits frames and a reader
//! that lost sync recovers at the next zero. The CRC is the blob's
//! ([`crate::format::CRC32`]). Everything works in caller-provided buffers: no
//! allocation; any malformed, truncated or oversized frame gives a [`FrameError`],
//! never a panic.

use serde::{Deserialize, Serialize};

use crate::format::CRC32;
use crate::tensor::Shape;

/// Bumped on any incompatible change to the messages below.
pub const PROTOCOL_VERSION: u8 = 1;
/// The frame delimiter.
pub const DELIMITER: u8 = 0;
const CRC_LEN: usize = 4;

/// From host to device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request<'a> {
    /// Describe the model.
    Info,
    /// Classify one image of raw `u8` pixels (NHWC).
    Classify {
        #[serde(borrow)]
        pixels: &'a [u8],
    },
}

/// From device to host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response<'a> {
    #[serde(borrow)]
    Info(ModelInfo<'a>),
    /// The class and the quantized logits (`i8` values as raw bytes).
    Prediction {
        class: u16,
        #[serde(borrow)]
        logits: &'a [u8],
    },
    Error(ErrorCode),
}

/// What a device says about its model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo<'a> {
    pub protocol: u8,
    pub name: &'a str,
    pub input: Shape,
    pub classes: u16,
    pub arena_bytes: u32,
    /// The CRC-32 stored at the end of the model's blob: identifies the exact model.
    pub model_crc: u32,
}

impl<'a> ModelInfo<'a> {
    /// What a device running `model` answers to [`Request::Info`].
    pub fn of(model: &crate::Model<'a>) -> ModelInfo<'a> {
        ModelInfo {
            protocol: PROTOCOL_VERSION,
            name: model.name(),
            input: model.input_shape(),
            classes: model.classes(),
            arena_bytes: crate::plan::arena_bytes(model),
            model_crc: model.crc(),
        }
    }
}

/// Why a device could not answer a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ErrorCode {
    /// The frame did not decode (COBS, checksum or postcard).
    BadFrame,
    /// The frame was longer than the device's buffer.
    TooLong,
    /// The image does not have the model's input size.
    InputLength,
    /// Inference failed (should not happen for a validated model).
    Internal,
}

/// Why a frame could not be written or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FrameError {
    /// The output buffer is too small for the frame.
    BufferTooSmall,
    /// The frame is longer than the reader's buffer.
    TooLong,
    /// Not valid COBS (a zero inside, or a block running past the end).
    Cobs,
    /// Shorter than its checksum.
    Truncated,
    Checksum,
    /// postcard could not decode the message, or bytes were left over.
    Message,
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let text = match self {
            FrameError::BufferTooSmall => "buffer too small for the frame",
            FrameError::TooLong => "frame longer than the buffer",
            FrameError::Cobs => "invalid COBS encoding",
            FrameError::Truncated => "frame shorter than its checksum",
            FrameError::Checksum => "frame checksum mismatch",
            FrameError::Message => "frame does not hold a valid message",
        };
        f.write_str(text)
    }
}

/// The largest frame (delimiter included) for a message of `payload` postcard bytes.
pub const fn max_frame_len(payload: usize) -> usize {
    let raw = payload + CRC_LEN;
    raw + raw / 254 + 2
}

/// Writes `message` as one frame into `buf`, returning the frame's bytes (delimiter
/// included).
pub fn encode<'b, T: Serialize>(message: &T, buf: &'b mut [u8]) -> Result<&'b [u8], FrameError> {
    // Serialize at an offset that leaves room for COBS overhead, then encode in place
    // towards the front: the write position never overtakes the read position.
    let room = buf.len();
    let serialized = {
        let probe = postcard::to_slice(message, &mut buf[..]).map_err(|_| FrameError::BufferTooSmall)?;
        probe.len()
    };
    let raw = serialized + CRC_LEN;
    let offset = raw / 254 + 1;
    if max_frame_len(serialized) > room {
        return Err(FrameError::BufferTooSmall);
    }
    buf.copy_within(..serialized, offset);
    let crc = CRC32.checksum(&buf[offset..offset + serialized]);
    buf[offset + serialized..offset + raw].copy_from_slice(&crc.to_le_bytes());
    let len = cobs_encode_in_place(buf, offset, raw);
    buf[len] = DELIMITER;
    Ok(&buf[..len + 1])
}

/// Decodes one frame body (the bytes before a delimiter, delimiter excluded) in place
/// and returns its message, borrowing from `frame`.
pub fn decode<'b, T: Deserialize<'b>>(frame: &'b mut [u8]) -> Result<T, FrameError> {
    let len = cobs_decode_in_place(frame)?;
    if len < CRC_LEN {
        return Err(FrameError::Truncated);
    }
    let (payload, crc) = frame[..len].split_at(len - CRC_LEN);
    if CRC32.checksum(payload) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
        return Err(FrameError::Checksum);
    }
    match postcard::take_from_bytes::<T>(payload) {
        Ok((message, [])) => Ok(message),
        _ => Err(FrameError::Message),
    }
}

/// COBS-encodes `buf[start..start + len]` into `buf[..]` and returns the encoded
/// length. Requires `start >= len / 254 + 1` and room for the result.
fn cobs_encode_in_place(buf: &mut [u8], start: usize, len: usize) -> usize {
    let (mut code_at, mut out, mut code) = (0, 1, 1u8);
    for i in start..start + len {
        let byte = buf[i];
        if byte == 0 {
            buf[code_at] = code;
            code_at = out;
            out += 1;
            code = 1;
            continue;
        }
        buf[out] = byte;
        out += 1;
        code += 1;
        if code == 0xFF {
            buf[code_at] = code;
            code_at = out;
            out += 1;
            code = 1;
        }
    }
    buf[code_at] = code;
    out
}

/// Decodes COBS in place; returns the decoded length.
fn cobs_decode_in_place(buf: &mut [u8]) -> Result<usize, FrameError> {
    let (mut read, mut write) = (0, 0);
    while read < buf.len() {
        let code = buf[read];
        if code == 0 {
            return Err(FrameError::Cobs);
        }
        read += 1;
        let n = usize::from(code - 1);
        if n > buf.len() - read {
            return Err(FrameError::Cobs);
        }
        for j in read..read + n {
            let byte = buf[j];
            if byte == 0 {
                return Err(FrameError::Cobs);
            }
            buf[write] = byte;
            write += 1;
        }
        read += n;
        if code < 0xFF && read < buf.len() {
            buf[write] = 0;
            write += 1;
        }
    }
    Ok(write)
}

/// Collects bytes from a stream into frames, in a caller-provided buffer.
///
/// A frame longer than the buffer is dropped whole (reported once as
/// [`FrameError::TooLong`] when its delimiter arrives) and reading resumes with the next
/// frame.
#[derive(Debug)]
pub struct Accumulator<'b> {
    buf: &'b mut [u8],
    len: usize,
    overflowed: bool,
}

/// What [`Accumulator::push`] saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Push {
    /// No complete frame yet.
    Pending,
    /// A frame body of this many bytes is ready in [`Accumulator::frame`].
    Frame(usize),
    /// A frame was too long and has been dropped.
    Overflow,
}

impl<'b> Accumulator<'b> {
    pub fn new(buf: &'b mut [u8]) -> Accumulator<'b> {
        Accumulator { buf, len: 0, overflowed: false }
    }

    /// Feeds one byte.
    pub fn push(&mut self, byte: u8) -> Push {
        if byte == DELIMITER {
            let (len, overflowed) = (self.len, self.overflowed);
            self.len = 0;
            self.overflowed = false;
            return match (overflowed, len) {
                (true, _) => Push::Overflow,
                (false, 0) => Push::Pending, // empty frame: a resync delimiter
                (false, len) => Push::Frame(len),
            };
        }
        if self.len < self.buf.len() {
            self.buf[self.len] = byte;
            self.len += 1;
        } else {
            self.overflowed = true;
        }
        Push::Pending
    }

    /// The body of the frame just reported by [`Push::Frame`], to pass to [`decode`].
    pub fn frame(&mut self, len: usize) -> &mut [u8] {
        let len = len.min(self.buf.len());
        &mut self.buf[..len]
    }
}

//! Frames: round trips, COBS edge cases, and every kind of bad frame rejected with an
//! error instead of a panic.

use fitnets_shared::tensor::Shape;
use fitnets_shared::wire::{
    Accumulator, ErrorCode, FrameError, ModelInfo, PROTOCOL_VERSION, Push, Request, Response, decode, encode,
    max_frame_len,
};
use proptest::prelude::*;

/// Encodes `message`, checks the frame has exactly one zero (its delimiter), decodes it.
fn round_trip<'a>(message: &Request<'_>, buf: &'a mut [u8]) -> Request<'a> {
    let len = {
        let frame = encode(message, buf).unwrap();
        assert_eq!(frame.iter().filter(|&&b| b == 0).count(), 1);
        assert_eq!(*frame.last().unwrap(), 0);
        frame.len()
    };
    decode(&mut buf[..len - 1]).unwrap()
}

#[test]
fn requests_round_trip() {
    let mut buf = [0u8; 2048];
    assert_eq!(round_trip(&Request::Info, &mut buf), Request::Info);
    for len in [0usize, 1, 253, 254, 255, 507, 508, 784, 1000] {
        for fill in [0u8, 1, 0xFF] {
            let pixels: Vec<u8> = (0..len).map(|i| if fill == 1 { i as u8 } else { fill }).collect();
            let message = Request::Classify { pixels: &pixels };
            let mut buf = vec![0u8; max_frame_len(len + 8)];
            assert_eq!(round_trip(&message, &mut buf), message, "len {len} fill {fill}");
        }
    }
}

#[test]
fn responses_round_trip() {
    let logits = [0x80u8, 0, 0x7F, 3];
    let info = ModelInfo {
        protocol: PROTOCOL_VERSION,
        name: "fitnet",
        input: Shape::new(28, 28, 1),
        classes: 10,
        arena_bytes: 25_088,
        model_crc: 0xDEAD_BEEF,
    };
    for message in [
        Response::Info(info),
        Response::Prediction { class: 2, logits: &logits },
        Response::Error(ErrorCode::InputLength),
    ] {
        let mut buf = [0u8; 128];
        let len = encode(&message, &mut buf).unwrap().len();
        let decoded: Response<'_> = decode(&mut buf[..len - 1]).unwrap();
        assert_eq!(decoded, message);
    }
}

#[test]
fn too_small_a_buffer_is_an_error() {
    let pixels = [7u8; 100];
    let mut buf = [0u8; 64];
    assert_eq!(encode(&Request::Classify { pixels: &pixels }, &mut buf).unwrap_err(), FrameError::BufferTooSmall);
}

#[test]
fn every_truncation_and_bit_flip_is_rejected() {
    let pixels: Vec<u8> = (0..300).map(|i| (i * 7) as u8).collect();
    let mut buf = [0u8; 512];
    let frame = encode(&Request::Classify { pixels: &pixels }, &mut buf).unwrap().to_vec();
    let body = &frame[..frame.len() - 1];
    for len in 0..body.len() {
        let mut cut = body[..len].to_vec();
        assert!(decode::<Request<'_>>(&mut cut).is_err(), "truncated to {len}");
    }
    for bit in 0..body.len() * 8 {
        let mut bad = body.to_vec();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(decode::<Request<'_>>(&mut bad).is_err(), "bit {bit}");
    }
}

#[test]
fn accumulator_drops_oversized_frames_and_recovers() {
    let mut storage = [0u8; 32];
    let mut acc = Accumulator::new(&mut storage);
    let mut frame_buf = [0u8; 64];
    let small = encode(&Request::Info, &mut frame_buf).unwrap().to_vec();
    let big_pixels = [9u8; 100];
    let mut big_buf = [0u8; 256];
    let big = encode(&Request::Classify { pixels: &big_pixels }, &mut big_buf).unwrap().to_vec();

    let mut events = Vec::new();
    for &byte in [&[0u8, 0][..], &big, &small, &big, &small].concat().iter() {
        match acc.push(byte) {
            Push::Pending => {}
            Push::Overflow => events.push("overflow"),
            Push::Frame(len) => {
                assert_eq!(decode::<Request<'_>>(acc.frame(len)).unwrap(), Request::Info);
                events.push("info");
            }
        }
    }
    assert_eq!(events, ["overflow", "info", "overflow", "info"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn random_frames_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut copy = bytes.clone();
        let _ = decode::<Request<'_>>(&mut bytes);
        let _ = decode::<Response<'_>>(&mut copy);
    }

    #[test]
    fn any_pixels_round_trip(pixels in proptest::collection::vec(any::<u8>(), 0..1200)) {
        let message = Request::Classify { pixels: &pixels };
        let mut buf = vec![0u8; max_frame_len(pixels.len() + 8)];
        prop_assert_eq!(round_trip(&message, &mut buf), message);
    }
}

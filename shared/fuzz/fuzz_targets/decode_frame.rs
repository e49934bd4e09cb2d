//! Fuzzes the wire protocol: `wire::decode` of a `Request` or a `Response` must never
//! panic on any bytes, and a message it accepts must re-encode with `wire::encode` into
//! a frame that decodes to the same message. Bytes are fed three ways: as one frame
//! body, as a postcard payload framed by `wire::encode` (so that they pass COBS and the
//! CRC and reach postcard), and as a stream split by a 64-byte `wire::Accumulator`.
#![no_main]

use fitnets_shared::wire::{self, Accumulator, Push, Request, Response};
use libfuzzer_sys::fuzz_target;
use serde::ser::{Serialize, SerializeTuple, Serializer};

fuzz_target!(|data: &[u8]| {
    check_body(data);

    let mut buf = vec![0u8; wire::max_frame_len(data.len())];
    let frame = wire::encode(&Raw(data), &mut buf).expect("max_frame_len bytes hold any payload");
    let (delimiter, body) = frame.split_last().expect("a frame is never empty");
    assert_eq!(*delimiter, wire::DELIMITER);
    assert!(!body.contains(&wire::DELIMITER), "COBS left a delimiter in the body");
    check_body(body);

    let mut stream = [0u8; 64];
    let mut accumulator = Accumulator::new(&mut stream);
    for &byte in data {
        if let Push::Frame(len) = accumulator.push(byte) {
            assert!((1..=64).contains(&len), "frame of {len} bytes from a 64-byte buffer");
            check_body(accumulator.frame(len));
        }
    }
});

/// Decodes `body` (a frame without its delimiter) as a request and as a response.
fn check_body(body: &[u8]) {
    let mut copy = body.to_vec();
    if let Ok(request) = wire::decode::<Request<'_>>(&mut copy) {
        let mut buf = vec![0u8; wire::max_frame_len(body.len())];
        let frame = wire::encode(&request, &mut buf).expect("a decoded request re-encodes");
        let mut again = frame[..frame.len() - 1].to_vec();
        assert_eq!(wire::decode::<Request<'_>>(&mut again), Ok(request));
    }
    let mut copy = body.to_vec();
    if let Ok(response) = wire::decode::<Response<'_>>(&mut copy) {
        let mut buf = vec![0u8; wire::max_frame_len(body.len())];
        let frame = wire::encode(&response, &mut buf).expect("a decoded response re-encodes");
        let mut again = frame[..frame.len() - 1].to_vec();
        assert_eq!(wire::decode::<Response<'_>>(&mut again), Ok(response));
    }
}

/// Bytes that postcard writes as they are (a tuple of `u8`s: no length prefix), so that
/// `wire::encode` frames an arbitrary payload.
struct Raw<'a>(&'a [u8]);

impl Serialize for Raw<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut tuple = serializer.serialize_tuple(self.0.len())?;
        for byte in self.0 {
            tuple.serialize_element(byte)?;
        }
        tuple.end()
    }
}

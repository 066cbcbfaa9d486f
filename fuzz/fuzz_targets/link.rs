//! The link handshake and frames: the open frame, then a stream of length-prefixed frames
//! through one opener (sequence numbers, nonce binding). Never a panic.
#![no_main]
use common::codec::{self, Keyring, LinkOpener, NONCE_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode_body(data);
    let _ = codec::open_open(&Keyring::none(), data);
    let mut opener = LinkOpener::new(Keyring::none(), &[1; NONCE_LEN], &[2; NONCE_LEN]);
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (frame, tail) = rest[2..].split_at(len);
        let _ = opener.open(frame);
        rest = tail;
    }
});

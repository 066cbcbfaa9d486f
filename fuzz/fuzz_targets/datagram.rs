//! Discovery datagrams: never a panic; with a key, nothing opens that was not sealed with it.
#![no_main]
use common::codec::{self, KEY_LEN, Keyring};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = 1_700_000_000_000;
    let _ = codec::open_datagram(&Keyring::none(), now, data);
    if let Ok(keys) = Keyring::new(vec![[5; KEY_LEN]]) {
        if let Ok(env) = codec::open_datagram(&keys, now, data) {
            // Only a correctly sealed message opens: sealing it again gives the same body.
            let again = codec::seal_datagram(&keys, now, &env).expect("re-seal");
            assert!(codec::open_datagram(&keys, now, &again).is_ok());
        }
    }
});

use super::*;
use crate::types::{MemberInfo, Rank, Role, Strategy};
use crate::wire::{Beat, Grant, PeerAddr};

fn info() -> MemberInfo {
    MemberInfo {
        id: 7,
        name: "alice".into(),
        addr: "127.0.0.1".into(),
        port: 8080,
        rank: Rank {
            priority: 0,
            key: 1,
            tiebreak: "alice".into(),
            id: 7,
        },
        started_ms: 1,
        witness: false,
        strategy: Strategy::Age,
    }
}

fn beat() -> Message {
    Message::Beat(Beat {
        seq: 3,
        echo: 2,
        role: Role::Slave,
        eligible: true,
        priority: 0,
        candidacy: None,
        master: false,
        grant: Some(Grant {
            candidate: 7,
            epoch: 4,
        }),
        epoch: 4,
        voted: 4,
        voting: true,
        quiet_ms: 0,
        view: 11,
        base: 12,
        following: Some(7),
        want: true,
        gap_ms: 4500,
    })
}

fn messages() -> Vec<Message> {
    vec![
        Message::Hello(info()),
        Message::Peers {
            peers: vec![PeerAddr {
                addr: "10.0.0.1".into(),
                port: 1,
            }],
        },
        beat(),
        Message::Leave { epoch: 9 },
        Message::Forget { id: 3 },
    ]
}

fn key(b: u8) -> Keyring {
    Keyring::new(vec![[b; KEY_LEN]]).expect("one key")
}

const NOW: u64 = 1_700_000_000_000;

#[test]
fn datagrams_round_trip_with_and_without_a_key() {
    for keys in [Keyring::none(), key(1)] {
        for msg in messages() {
            let env = Envelope::new("c", 1, msg);
            let bytes = seal_datagram(&keys, NOW, &env).expect("seal");
            assert_eq!(open_datagram(&keys, NOW + 5, &bytes), Ok(env));
        }
    }
}

#[test]
fn a_beat_is_compact() {
    let bytes = seal_datagram(&key(1), NOW, &Envelope::new("c", u64::MAX, beat())).expect("seal");
    // JSON (version 1) took about 250 bytes.
    assert!(bytes.len() < 90, "{} bytes", bytes.len());
}

#[test]
fn wrong_or_missing_keys_are_refused() {
    let env = Envelope::new("c", 1, Message::Leave { epoch: 1 });
    let signed = seal_datagram(&key(1), NOW, &env).expect("seal");
    let plain = seal_datagram(&Keyring::none(), NOW, &env).expect("seal");
    assert_eq!(open_datagram(&key(2), NOW, &signed), Err(OpenError::BadTag));
    assert_eq!(
        open_datagram(&key(1), NOW, &plain),
        Err(OpenError::Unauthenticated)
    );
    assert_eq!(
        open_datagram(&Keyring::none(), NOW, &signed),
        Err(OpenError::Unauthenticated)
    );
    // A tampered body fails the tag.
    let mut bad = signed.clone();
    if let Some(b) = bad.get_mut(HEADER + 8) {
        *b ^= 1;
    }
    assert_eq!(open_datagram(&key(1), NOW, &bad), Err(OpenError::BadTag));
}

#[test]
fn rotation_any_key_verifies_the_first_signs() {
    let old = [1u8; KEY_LEN];
    let new = [2u8; KEY_LEN];
    let both = Keyring::new(vec![new, old]).expect("keys");
    let env = Envelope::new("c", 1, Message::Leave { epoch: 1 });
    let from_old = seal_datagram(&key(1), NOW, &env).expect("seal");
    let from_both = seal_datagram(&both, NOW, &env).expect("seal");
    assert!(open_datagram(&both, NOW, &from_old).is_ok());
    assert!(open_datagram(&key(2), NOW, &from_both).is_ok());
    assert_eq!(
        open_datagram(&key(1), NOW, &from_both),
        Err(OpenError::BadTag)
    );
}

#[test]
fn stale_datagrams_are_replays() {
    let env = Envelope::new("c", 1, Message::Leave { epoch: 1 });
    let bytes = seal_datagram(&key(1), NOW, &env).expect("seal");
    assert_eq!(
        open_datagram(&key(1), NOW + DATAGRAM_WINDOW_MS + 1, &bytes),
        Err(OpenError::Replay)
    );
    assert_eq!(
        open_datagram(&key(1), NOW - DATAGRAM_WINDOW_MS - 1, &bytes),
        Err(OpenError::Replay)
    );
}

#[test]
fn link_frames_are_bound_to_the_connection_and_in_sequence() {
    let keys = key(3);
    let (a, b, c) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN], [9u8; NONCE_LEN]);
    // The open frame carries the nonce.
    let hello = Envelope::new("c", 7, Message::Hello(info()));
    let open_bytes = seal_open(&keys, &a, &hello).expect("seal");
    assert_eq!(open_open(&keys, &open_bytes), Ok((a, hello)));
    let mut tx = LinkSealer::new(keys.clone(), &a, &b);
    let mut rx = LinkOpener::new(keys.clone(), &b, &a);
    let env = Envelope::new("c", 7, Message::Leave { epoch: 1 });
    let body = encode_body(&env).expect("encode");
    let f1 = tx.seal(&body);
    let f2 = tx.seal(&body);
    assert_eq!(rx.open(&f1), Ok(env.clone()));
    // Replayed on the same connection.
    assert_eq!(rx.open(&f1), Err(OpenError::Replay));
    assert_eq!(rx.open(&f2), Ok(env.clone()));
    // Captured and replayed on another connection (another receiver nonce).
    let mut other = LinkOpener::new(keys.clone(), &c, &a);
    assert_eq!(other.open(&f1), Err(OpenError::BadTag));
    // Reflected back to the sender (direction is bound).
    let mut back = LinkOpener::new(keys, &a, &b);
    assert_eq!(back.open(&f1), Err(OpenError::BadTag));
    // Kinds are not interchangeable.
    assert_eq!(open_open(&key(3), &f1), Err(OpenError::BadKind(2)));
}

#[test]
fn versions_and_junk_are_refused() {
    assert_eq!(open_datagram(&key(1), NOW, b""), Err(OpenError::BadMagic));
    assert_eq!(
        open_datagram(&key(1), NOW, b"{\"magic\":\"quorumd\"}"),
        Err(OpenError::BadMagic)
    );
    assert_eq!(
        open_datagram(&key(1), NOW, b"QD\x01\x00\x01"),
        Err(OpenError::BadVersion(1))
    );
    // Version 2 had no quiet pairs (a beat without `want` and `gap_ms`).
    assert_eq!(
        open_datagram(&key(1), NOW, b"QD\x02\x00\x01"),
        Err(OpenError::BadVersion(2))
    );
    // Version 3 had no pledges: a vote given while quiet backed the master at once.
    assert_eq!(
        open_datagram(&key(1), NOW, b"QD\x03\x00\x01"),
        Err(OpenError::BadVersion(3))
    );
    assert_eq!(
        open_datagram(&Keyring::none(), NOW, b"QD\x04\x00\x00"),
        Err(OpenError::Malformed("truncated".into()))
    );
    assert_eq!(
        open_datagram(&Keyring::none(), NOW, &vec![b'Q'; MAX_FRAME + 1]),
        Err(OpenError::TooLarge(MAX_FRAME + 1))
    );
}

#[test]
fn names_from_the_network_follow_the_local_rule() {
    for bad in ["", "a b", "a\u{0}", "a\n", &"x".repeat(256)] {
        let mut i = info();
        i.name = bad.into();
        let bytes = seal_datagram(
            &Keyring::none(),
            NOW,
            &Envelope::new("c", 7, Message::Hello(i)),
        )
        .expect("seal");
        assert!(
            matches!(
                open_datagram(&Keyring::none(), NOW, &bytes),
                Err(OpenError::BadName(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn key_files_parse_and_refuse_junk() {
    let k = "ab".repeat(32);
    let text = format!("# new key\n{k}\n\n{}\n", "01".repeat(32));
    let ring = Keyring::parse(&text).expect("two keys");
    assert_eq!(ring.len(), 2);
    assert_eq!(Keyring::parse("# nothing\n").err(), Some(KeyError::Empty));
    assert_eq!(Keyring::parse("abc\n").err(), Some(KeyError::BadLine(1)));
    assert_eq!(
        Keyring::parse(&format!("{}\n", "zz".repeat(32))).err(),
        Some(KeyError::BadLine(1))
    );
    assert_eq!(key_to_hex(&[0xab; KEY_LEN]), k);
}

/// A small deterministic fuzz in `cargo test` (the cargo-fuzz targets in `fuzz/` go further):
/// mutated valid messages and random bytes never panic, and never open without the key.
#[test]
fn mutated_messages_never_panic_nor_open_without_the_key() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let keys = key(5);
    let (a, b) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
    let seeds: Vec<Vec<u8>> = messages()
        .into_iter()
        .flat_map(|m| {
            let env = Envelope::new("c", 7, m);
            let body = encode_body(&env).expect("encode");
            vec![
                seal_datagram(&keys, NOW, &env).expect("seal"),
                seal_datagram(&Keyring::none(), NOW, &env).expect("seal"),
                seal_open(&keys, &a, &env).expect("seal"),
                LinkSealer::new(keys.clone(), &a, &b).seal(&body),
                body,
            ]
        })
        .collect();
    for i in 0..20_000u64 {
        let seed = &seeds[(rnd() % seeds.len() as u64) as usize];
        let mut m = seed.clone();
        let flips = 1 + rnd() % 4;
        for _ in 0..flips {
            match rnd() % 3 {
                0 if !m.is_empty() => {
                    let p = (rnd() % m.len() as u64) as usize;
                    m[p] ^= 1 << (rnd() % 8);
                }
                1 => {
                    let p = (rnd() % (m.len() as u64 + 1)) as usize;
                    m.truncate(p);
                }
                _ => m.push(rnd() as u8),
            }
        }
        if i % 7 == 0 {
            m = (0..rnd() % 200).map(|_| rnd() as u8).collect();
        }
        let _ = decode_body(&m);
        let _ = open_datagram(&Keyring::none(), NOW, &m);
        let _ = open_open(&Keyring::none(), &m);
        let _ = LinkOpener::new(Keyring::none(), &b, &a).open(&m);
        if m != *seed {
            // With the key, a changed message never opens (the tag covers everything).
            assert!(open_datagram(&keys, NOW, &m).is_err());
            assert!(LinkOpener::new(keys.clone(), &b, &a).open(&m).is_err());
        }
    }
}

fn seeds_dir(target: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target)
}

/// Writes the fuzz seeds of the codec targets: `cargo test -p quorum-common -- --ignored
/// write_fuzz_seeds`.
#[test]
#[ignore]
fn write_fuzz_seeds() {
    let keys = key(5);
    let (a, b) = ([1u8; NONCE_LEN], [2u8; NONCE_LEN]);
    for dir in ["datagram", "link"] {
        std::fs::create_dir_all(seeds_dir(dir)).expect("mkdir");
    }
    for (i, m) in messages().into_iter().enumerate() {
        let env = Envelope::new("c", 7, m);
        let d = seal_datagram(&keys, NOW, &env).expect("seal");
        std::fs::write(seeds_dir("datagram").join(format!("keyed-{i}")), d).expect("write");
        let d = seal_datagram(&Keyring::none(), NOW, &env).expect("seal");
        std::fs::write(seeds_dir("datagram").join(format!("plain-{i}")), d).expect("write");
        // Link target input: 2-byte length + frame, repeated.
        let body = encode_body(&env).expect("encode");
        let mut tx = LinkSealer::new(Keyring::none(), &b, &a);
        let mut stream = Vec::new();
        for f in [tx.seal(&body), tx.seal(&body)] {
            stream.extend_from_slice(&(f.len() as u16).to_be_bytes());
            stream.extend_from_slice(&f);
        }
        std::fs::write(seeds_dir("link").join(format!("frames-{i}")), stream).expect("write");
    }
}

/// The committed fuzz seeds (and every crash found, kept there as a regression) run in
/// `cargo test` through the same checks as the fuzz targets.
#[test]
fn fuzz_seeds_replay_without_panic() {
    let keys = key(5);
    let mut n = 0;
    for target in ["datagram", "link"] {
        let Ok(dir) = std::fs::read_dir(seeds_dir(target)) else {
            continue;
        };
        for f in dir.flatten() {
            let data = std::fs::read(f.path()).expect("read seed");
            n += 1;
            let _ = decode_body(&data);
            let _ = open_datagram(&Keyring::none(), NOW, &data);
            let _ = open_datagram(&keys, NOW, &data);
            let _ = open_open(&Keyring::none(), &data);
            let mut opener = LinkOpener::new(Keyring::none(), &[1; NONCE_LEN], &[2; NONCE_LEN]);
            let mut rest = &data[..];
            while rest.len() >= 2 {
                let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
                let (frame, tail) = rest[2..].split_at(len);
                let _ = opener.open(frame);
                rest = tail;
            }
        }
    }
    assert!(n >= 10, "fuzz seeds missing: {n}");
}

#[test]
fn implausible_epochs_are_refused_even_when_authentic() {
    let keys = key(1);
    let mut b = match beat() {
        Message::Beat(b) => b,
        _ => unreachable!(),
    };
    b.epoch = u64::MAX;
    for msg in [
        Message::Beat(b),
        Message::Leave {
            epoch: MAX_EPOCH + 1,
        },
    ] {
        let bytes = seal_datagram(&keys, NOW, &Envelope::new("c", 1, msg)).expect("seal");
        assert!(matches!(
            open_datagram(&keys, NOW, &bytes),
            Err(OpenError::Malformed(_))
        ));
    }
}

//! Deterministic fuzzing of every decoder the relay exposes to the network:
//! random and mutated inputs must yield a value or an error, never a panic,
//! and never unbounded buffering. Seeds are fixed, so a failure reproduces.

use bytes::{Bytes, BytesMut};
use moq_wire::control::{encode_request, take_frame, Response};
use moq_wire::datagram::Datagram;
use moq_wire::subgroup::SubgroupParser;
use moq_wire::varint;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Valid inputs to mutate: control frames, subgroup streams, datagrams.
fn corpus() -> Vec<Vec<u8>> {
    use moq_wire::coding::{KeyValuePairs, TrackNamespace};
    use moq_wire::message::{Message, Subscribe};
    let sub = Message::Subscribe(Subscribe {
        id: 2,
        track_namespace: TrackNamespace::from_utf8_path("a/b"),
        track_name: "t".into(),
        params: KeyValuePairs::default(),
    });
    let mut subgroup = vec![0x15];
    for v in [7u64, 3, 1] {
        varint::write(&mut subgroup, v);
    }
    subgroup.push(0x80);
    for i in 0..3u64 {
        varint::write(&mut subgroup, 0);
        varint::write(&mut subgroup, 2);
        subgroup.extend_from_slice(&[0x0a, i as u8]);
        varint::write(&mut subgroup, 3);
        subgroup.extend_from_slice(b"abc");
    }
    vec![
        encode_request(&sub).unwrap().to_vec(),
        Response::error(moq_wire::message::RequestErrorCode::DoesNotExist, 0, "x").encode().to_vec(),
        Response::SubscribeOk { alias: 1, params: KeyValuePairs::new(), properties: Bytes::new() }.encode().to_vec(),
        subgroup,
        vec![0x01, 0x05, 0x02, 0x03, 0x80, 0x02, 0x0a, 0x01, b'h', b'i'],
    ]
}

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        match rng.below(4) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v.truncate(i);
            }
            2 => {
                let i = rng.below(v.len() + 1);
                let extra = rng.bytes(8);
                v.splice(i..i, extra);
            }
            _ => v.push(0xff),
        }
    }
    v
}

fn exercise(input: &[u8]) {
    // Control framing + both decoders.
    let mut buf = BytesMut::from(input);
    while let Ok(Some(f)) = take_frame(&mut buf) {
        let _ = f.request();
        let _ = f.response();
    }
    // Subgroup stream, fed in random-ish chunk sizes.
    let mut p = SubgroupParser::new(4096);
    for chunk in input.chunks(3) {
        p.push(chunk);
        while let Ok(Some(_)) = p.next() {}
        // Never more than one object (bounded by max size) plus one chunk.
        assert!(p.buffered() <= 4096 + 64 + 3, "parser buffered {} bytes", p.buffered());
    }
    let _ = p.finish();
    let _ = Datagram::parse(Bytes::copy_from_slice(input)).map(|d| d.with_alias(9));
    let _ = varint::read(input);
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..50_000 {
        let input = rng.bytes(64);
        exercise(&input);
    }
}

#[test]
fn mutated_valid_inputs_never_panic() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let corpus = corpus();
    for _ in 0..100_000 {
        let base = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, base);
        exercise(&input);
    }
}

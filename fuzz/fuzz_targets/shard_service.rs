//! The shard service a node offers its peers (cluster mode), fed any method, path, query and
//! body — or a request aimed near a shard it really holds, with its numbers perturbed — on a
//! real engine's disks. What must hold: no panic; whatever parses builds the same request
//! back; no answer is a 500; a refused request changes nothing; every stored shard reads back
//! intact unless the request released or rewrote its very place (it is then put back).
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bytes::Bytes;
use engine::{EngineConfig, LocalShards, ShardLoc, ShardRange, ShardRead, ShardTransport};
use http::{Method, StatusCode};
use libfuzzer_sys::fuzz_target;
use predastore_cluster::{service::serve, wire::Request};

/// A shard the node holds: its disk, the range that reads it whole, its header and payload.
struct Stored {
    disk: u32,
    range: ShardRange,
    header: [u8; engine::SHARD_HEADER_LEN],
    payload: Vec<u8>,
}

struct Node {
    _dir: tempfile::TempDir,
    _engine: engine::Engine,
    shards: LocalShards,
    stored: Vec<Stored>,
}

fn node() -> &'static Node {
    static NODE: OnceLock<Node> = OnceLock::new();
    NODE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut cfg = EngineConfig::new(dir.path());
        cfg.durability = engine::Durability::None;
        let e = engine::Engine::open(cfg).expect("engine");
        let shards = e.local_shards();
        let stored = (0..3u8)
            .map(|i| {
                let payload: Vec<u8> = (0..4096 * (i as usize + 1)).map(|b| b as u8 ^ i).collect();
                let chunk = *blake3::hash(&payload).as_bytes();
                let header = engine::fuzzing::peer_shard_header(&chunk, &payload);
                let disk = i as u32;
                let loc = shards
                    .append(disk, &header, &payload, true)
                    .expect("append");
                let len = payload.len() as u32;
                Stored {
                    disk,
                    range: ShardRange {
                        chunk,
                        index: 0,
                        loc,
                        shard_len: len,
                        lo: 0,
                        hi: len,
                    },
                    header,
                    payload,
                }
            })
            .collect();
        Node {
            _dir: dir,
            _engine: e,
            shards,
            stored,
        }
    })
}

/// A request near a stored shard: which one, what to do, and how far off each number is.
#[derive(Arbitrary, Debug)]
struct Aim {
    shard: u8,
    op: u8,
    disk: i8,
    volume: i8,
    offset: i64,
    len: i32,
    lo: u32,
    hi: u32,
    index: u8,
}

#[derive(Arbitrary, Debug)]
enum Input {
    /// Anything as method, path, query and body.
    Raw {
        method: u8,
        path: String,
        query: Option<String>,
        body: Vec<u8>,
    },
    /// A well-formed request aimed near a stored shard, with any body.
    Aimed { aim: Aim, body: Vec<u8> },
}

const METHODS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::HEAD,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
];

fn aimed(n: &Node, a: &Aim) -> Request {
    let s = &n.stored[a.shard as usize % n.stored.len()];
    let disk = s.disk.wrapping_add_signed(a.disk as i32);
    let loc = ShardLoc {
        volume: s.range.loc.volume.wrapping_add_signed(a.volume as i64),
        offset: s.range.loc.offset.wrapping_add_signed(a.offset),
    };
    let len = s.range.shard_len.wrapping_add_signed(a.len);
    match a.op % 6 {
        0 => Request::Online { disk },
        1 => Request::Append {
            disk,
            data: a.index & 1 == 1,
        },
        2 => Request::Rewrite { disk, loc },
        3 => Request::Read {
            disk,
            range: ShardRange {
                chunk: s.range.chunk,
                index: a.index as u32,
                loc,
                shard_len: len,
                lo: a.lo,
                hi: a.hi,
            },
        },
        4 => Request::Present { disk, loc, len },
        _ => Request::Release { disk, loc, len },
    }
}

/// Whether `r` frees or overwrites bytes of `s`'s place (header and payload).
fn touches(r: &Request, s: &Stored) -> bool {
    let overlaps = |disk: u32, loc: ShardLoc, len: u64| {
        let start = s.range.loc.offset;
        let end = start + (engine::SHARD_HEADER_LEN + s.payload.len()) as u64;
        disk == s.disk
            && loc.volume == s.range.loc.volume
            && loc.offset < end
            && loc.offset.saturating_add(len) > start
    };
    match r {
        // A punched region is rounded up to whole 4 KiB pages.
        Request::Release { disk, loc, len } => overlaps(
            *disk,
            *loc,
            (engine::SHARD_HEADER_LEN as u64 + *len as u64).div_ceil(4096) * 4096,
        ),
        Request::Rewrite { disk, loc } => overlaps(*disk, *loc, u64::MAX),
        _ => false,
    }
}

fn split(pq: &str) -> (&str, Option<&str>) {
    match pq.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (pq, None),
    }
}

fuzz_target!(|input: Input| {
    let n = node();
    let (request, body) = match input {
        Input::Raw {
            method,
            path,
            query,
            body,
        } => {
            let method = &METHODS[method as usize % METHODS.len()];
            match Request::parse(method, &path, query.as_deref()) {
                Ok(r) => (r, body),
                Err(why) => {
                    assert!(!why.is_empty(), "a refusal without a reason");
                    return;
                }
            }
        }
        Input::Aimed { aim, body } => (aimed(n, &aim), body),
    };
    // What parses is what its builder writes.
    let pq = request.path_and_query();
    let (p, q) = split(&pq);
    assert_eq!(
        Request::parse(&request.method(), p, q).as_ref(),
        Ok(&request),
        "{pq} does not parse back"
    );
    let touched: Vec<bool> = n.stored.iter().map(|s| touches(&request, s)).collect();
    let status = serve(&n.shards, request.clone(), Bytes::from(body)).status();
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{request:?} answered 500"
    );
    for (s, touched) in n.stored.iter().zip(touched) {
        let intact = matches!(n.shards.read(s.disk, &s.range), ShardRead::Ok(b) if b.as_ref() == s.payload.as_slice());
        if touched && !intact {
            // Put it back where it was, as heal does.
            n.shards
                .rewrite(s.disk, s.range.loc, &s.header, &s.payload)
                .expect("a shard rewritten in its place");
            assert!(
                matches!(n.shards.read(s.disk, &s.range), ShardRead::Ok(b) if b.as_ref() == s.payload.as_slice())
            );
        } else {
            assert!(intact, "{request:?} ({status}) changed shard {:?}", s.range);
        }
    }
});

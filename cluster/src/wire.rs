//! The shard service's requests, as paths and queries both ends build and parse here:
//!
//! | request | method and path | body | answer |
//! |---|---|---|---|
//! | disk online? | `GET /v1/disks/{d}` | | 200, or 503 |
//! | append | `POST /v1/disks/{d}/shards?data=0\|1` | header ‖ payload | 200, the place: volume u64le ‖ offset u64le |
//! | rewrite | `PUT /v1/disks/{d}/shards/{volume}/{offset}` | header ‖ payload | 204 |
//! | read | `GET /v1/disks/{d}/shards/{volume}/{offset}?chunk=&index=&len=&lo=&hi=` | | 200 the bytes, 404 missing, 409 corrupt |
//! | present? | `HEAD /v1/disks/{d}/shards/{volume}/{offset}?len=` | | 200, or 404 |
//! | release | `DELETE /v1/disks/{d}/shards/{volume}/{offset}?len=` | | 204 |
//!
//! A refused shard (it does not match its header) is 422, a full disk 507, anything else the
//! node could not parse 400 — each with a plain-text reason.

use engine::{ShardLoc, ShardRange};
use http::Method;

/// One request of the shard service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Whether disk `disk` takes reads and writes.
    Online { disk: u32 },
    /// Append the shard in the body.
    Append { disk: u32, data: bool },
    /// Overwrite the shard at `loc` with the body.
    Rewrite { disk: u32, loc: ShardLoc },
    /// Read part of a shard.
    Read { disk: u32, range: ShardRange },
    /// Whether a shard of `len` bytes is at `loc`.
    Present { disk: u32, loc: ShardLoc, len: u32 },
    /// Free the shard of `len` bytes at `loc`.
    Release { disk: u32, loc: ShardLoc, len: u32 },
}

impl Request {
    /// The method of the request.
    pub fn method(&self) -> Method {
        match self {
            Request::Online { .. } | Request::Read { .. } => Method::GET,
            Request::Append { .. } => Method::POST,
            Request::Rewrite { .. } => Method::PUT,
            Request::Present { .. } => Method::HEAD,
            Request::Release { .. } => Method::DELETE,
        }
    }

    /// The path and query of the request.
    pub fn path_and_query(&self) -> String {
        let at = |disk: &u32, loc: &ShardLoc| {
            format!("/v1/disks/{disk}/shards/{}/{}", loc.volume, loc.offset)
        };
        match self {
            Request::Online { disk } => format!("/v1/disks/{disk}"),
            Request::Append { disk, data } => {
                format!("/v1/disks/{disk}/shards?data={}", *data as u8)
            }
            Request::Rewrite { disk, loc } => at(disk, loc),
            Request::Read { disk, range } => format!(
                "{}?chunk={}&index={}&len={}&lo={}&hi={}",
                at(disk, &range.loc),
                hex::encode(range.chunk),
                range.index,
                range.shard_len,
                range.lo,
                range.hi
            ),
            Request::Present { disk, loc, len } | Request::Release { disk, loc, len } => {
                format!("{}?len={len}", at(disk, loc))
            }
        }
    }

    /// The request a method, path and query make, or why they make none.
    pub fn parse(method: &Method, path: &str, query: Option<&str>) -> Result<Request, String> {
        let rest = path
            .strip_prefix("/v1/disks/")
            .ok_or_else(|| format!("no such resource: {path}"))?;
        let parts: Vec<&str> = rest.split('/').collect();
        let q = Query::parse(query.unwrap_or(""))?;
        let disk: u32 = number("disk", parts[0])?;
        let loc = |v: &str, o: &str| -> Result<ShardLoc, String> {
            Ok(ShardLoc {
                volume: number("volume", v)?,
                offset: number("offset", o)?,
            })
        };
        match (method, parts.as_slice()) {
            (&Method::GET, [_]) => Ok(Request::Online { disk }),
            (&Method::POST, [_, "shards"]) => Ok(Request::Append {
                disk,
                data: match q.get("data")? {
                    "0" => false,
                    "1" => true,
                    v => return Err(format!("data must be 0 or 1, not {v:?}")),
                },
            }),
            (&Method::PUT, [_, "shards", v, o]) => Ok(Request::Rewrite {
                disk,
                loc: loc(v, o)?,
            }),
            (&Method::GET, [_, "shards", v, o]) => {
                let chunk = hex::decode(q.get("chunk")?)
                    .ok()
                    .and_then(|c| <[u8; 32]>::try_from(c).ok())
                    .ok_or("chunk must be 64 hex digits")?;
                Ok(Request::Read {
                    disk,
                    range: ShardRange {
                        chunk,
                        index: number("index", q.get("index")?)?,
                        loc: loc(v, o)?,
                        shard_len: number("len", q.get("len")?)?,
                        lo: number("lo", q.get("lo")?)?,
                        hi: number("hi", q.get("hi")?)?,
                    },
                })
            }
            (&Method::HEAD, [_, "shards", v, o]) => Ok(Request::Present {
                disk,
                loc: loc(v, o)?,
                len: number("len", q.get("len")?)?,
            }),
            (&Method::DELETE, [_, "shards", v, o]) => Ok(Request::Release {
                disk,
                loc: loc(v, o)?,
                len: number("len", q.get("len")?)?,
            }),
            _ => Err(format!("no such request: {method} {path}")),
        }
    }
}

/// A decimal number named `what`.
fn number<T: std::str::FromStr>(what: &str, s: &str) -> Result<T, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{what} must be a decimal number, not {s:?}"));
    }
    s.parse()
        .map_err(|_| format!("{what} {s:?} is out of range"))
}

/// `name=value` pairs of a query (no escapes: the service's values are digits and hex).
struct Query<'a>(Vec<(&'a str, &'a str)>);

impl<'a> Query<'a> {
    fn parse(q: &'a str) -> Result<Query<'a>, String> {
        let mut pairs = Vec::new();
        for p in q.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| format!("query part {p:?} has no value"))?;
            if pairs.iter().any(|(n, _)| *n == k) {
                return Err(format!("{k} given twice"));
            }
            pairs.push((k, v));
        }
        Ok(Query(pairs))
    }

    fn get(&self, name: &str) -> Result<&'a str, String> {
        self.0
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| format!("{name} is missing"))
    }
}

/// The body of an append's answer: where the shard went.
pub fn encode_loc(loc: ShardLoc) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&loc.volume.to_le_bytes());
    b[8..].copy_from_slice(&loc.offset.to_le_bytes());
    b
}

/// The place in an append's answer.
pub fn decode_loc(b: &[u8]) -> Option<ShardLoc> {
    let b: &[u8; 16] = b.try_into().ok()?;
    Some(ShardLoc {
        volume: u64::from_le_bytes(b[..8].try_into().ok()?),
        offset: u64::from_le_bytes(b[8..].try_into().ok()?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pq: &str) -> (&str, Option<&str>) {
        match pq.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (pq, None),
        }
    }

    #[test]
    fn every_request_parses_back_from_what_it_builds() {
        let loc = ShardLoc {
            volume: 7,
            offset: 4096 * 3,
        };
        let reqs = [
            Request::Online { disk: 0 },
            Request::Append {
                disk: 3,
                data: true,
            },
            Request::Append {
                disk: 3,
                data: false,
            },
            Request::Rewrite { disk: 1, loc },
            Request::Read {
                disk: 5,
                range: ShardRange {
                    chunk: [0xab; 32],
                    index: 4,
                    loc,
                    shard_len: 1 << 20,
                    lo: 10,
                    hi: 99,
                },
            },
            Request::Present {
                disk: 2,
                loc,
                len: 5,
            },
            Request::Release {
                disk: 2,
                loc,
                len: 5,
            },
        ];
        for r in reqs {
            let pq = r.path_and_query();
            let (p, q) = split(&pq);
            assert_eq!(Request::parse(&r.method(), p, q), Ok(r.clone()), "{pq}");
        }
        assert_eq!(decode_loc(&encode_loc(loc)), Some(loc));
        assert_eq!(decode_loc(&[1, 2, 3]), None);
    }

    #[test]
    fn malformed_requests_are_refused_with_a_reason() {
        let get = Method::GET;
        for (m, p, q, why) in [
            (&get, "/v2/disks/0", None, "no such resource"),
            (&get, "/v1/disks/x", None, "disk must be a decimal"),
            (&get, "/v1/disks/-1", None, "disk must be a decimal"),
            (&get, "/v1/disks/99999999999", None, "out of range"),
            (&Method::POST, "/v1/disks/0/shards", None, "data is missing"),
            (
                &Method::POST,
                "/v1/disks/0/shards",
                Some("data=2"),
                "0 or 1",
            ),
            (&get, "/v1/disks/0/shards/1/0", Some("chunk=zz"), "64 hex"),
            (&get, "/v1/disks/0/shards/1/0", Some("chunk"), "no value"),
            (
                &Method::HEAD,
                "/v1/disks/0/shards/1/0",
                Some("len=1&len=2"),
                "twice",
            ),
            (&Method::PATCH, "/v1/disks/0", None, "no such request"),
            (
                &Method::DELETE,
                "/v1/disks/0/shards/1",
                Some("len=3"),
                "no such request",
            ),
        ] {
            let e = Request::parse(m, p, q).unwrap_err();
            assert!(e.contains(why), "{m} {p} {q:?}: {e}");
        }
    }
}

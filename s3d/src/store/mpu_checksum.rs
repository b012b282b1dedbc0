//! The checksum of a multipart object, from its parts' checksums: `COMPOSITE` (a checksum of
//! the parts' checksums, written `value-N`) or `FULL_OBJECT` (the parts' CRCs combined into the
//! CRC of the whole object, as if it had been sent in one piece).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use crc_fast::CrcAlgorithm;
use s3s::checksum::ChecksumHasher;

/// A checksum of the parts' checksums.
pub const COMPOSITE: &str = "COMPOSITE";
/// A checksum of the whole object's bytes.
pub const FULL_OBJECT: &str = "FULL_OBJECT";

/// The checksum type S3 takes for `algorithm` when the client names none.
pub fn default_type(algorithm: &str) -> &'static str {
    if algorithm == "CRC64NVME" {
        FULL_OBJECT
    } else {
        COMPOSITE
    }
}

/// Whether S3 offers checksum type `kind` with `algorithm`.
pub fn allowed(algorithm: &str, kind: &str) -> bool {
    match kind {
        FULL_OBJECT => matches!(algorithm, "CRC32" | "CRC32C" | "CRC64NVME"),
        COMPOSITE => matches!(algorithm, "CRC32" | "CRC32C" | "SHA1" | "SHA256"),
        _ => false,
    }
}

/// The object's checksum of type `kind` with `algorithm`, from each part's checksum (base64)
/// and size, in part order; `Err` says what is wrong with the parts' checksums.
pub fn of_parts(algorithm: &str, kind: &str, parts: &[(String, u64)]) -> Result<String, String> {
    let raw = parts
        .iter()
        .map(|(c, _)| STANDARD.decode(c))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| format!("a part's {algorithm} checksum is not base64"))?;
    match kind {
        COMPOSITE => {
            let mut h = ChecksumHasher::default();
            crate::body::enable(&mut h, algorithm);
            h.update(&raw.concat());
            let value = the_value(h.finalize())
                .ok_or_else(|| format!("{algorithm} has no composite checksum"))?;
            Ok(format!("{value}-{}", parts.len()))
        }
        FULL_OBJECT => {
            let (crc, width) = match algorithm {
                "CRC32" => (CrcAlgorithm::Crc32IsoHdlc, 4),
                "CRC32C" => (CrcAlgorithm::Crc32Iscsi, 4),
                "CRC64NVME" => (CrcAlgorithm::Crc64Nvme, 8),
                _ => return Err(format!("{algorithm} has no full-object checksum")),
            };
            let mut whole: Option<u64> = None;
            for (bytes, (_, size)) in raw.iter().zip(parts) {
                if bytes.len() != width {
                    return Err(format!(
                        "a part's {algorithm} checksum has the wrong length"
                    ));
                }
                let part = bytes.iter().fold(0u64, |acc, b| acc << 8 | u64::from(*b));
                whole = Some(match whole {
                    None => part,
                    Some(w) => crc_fast::checksum_combine(crc, w, part, *size),
                });
            }
            let whole = whole.ok_or("no parts")?;
            Ok(STANDARD.encode(&whole.to_be_bytes()[8 - width..]))
        }
        _ => Err(format!("unknown checksum type {kind}")),
    }
}

/// The one value a hasher computing one algorithm produced.
fn the_value(c: s3s::dto::Checksum) -> Option<String> {
    [
        c.checksum_crc32,
        c.checksum_crc32c,
        c.checksum_crc64nvme,
        c.checksum_sha1,
        c.checksum_sha256,
    ]
    .into_iter()
    .flatten()
    .next()
}

/// `body` as it is, computing its `algorithm` checksum on the way (`None`: nothing to
/// compute); the value lands in the returned checksums once the body has been read to its end.
/// For parts copied into an upload that keeps a checksum (UploadPartCopy).
pub fn checksummed<E>(
    body: impl futures::Stream<Item = Result<bytes::Bytes, E>> + Send + 'static,
    algorithm: Option<String>,
) -> (
    impl futures::Stream<Item = Result<bytes::Bytes, E>> + Send,
    Option<engine::LateChecksums>,
)
where
    E: Send + 'static,
{
    use futures::StreamExt;
    use std::sync::{Arc, Mutex};
    let late: Option<engine::LateChecksums> = algorithm.as_ref().map(|_| Default::default());
    let hasher = Arc::new(Mutex::new(algorithm.as_ref().map(|a| {
        let mut h = ChecksumHasher::default();
        crate::body::enable(&mut h, a);
        h
    })));
    let (fed, done, out) = (hasher.clone(), hasher, late.clone());
    let body = body
        .map(move |piece| {
            if let (Ok(b), Ok(mut h)) = (&piece, fed.lock()) {
                if let Some(h) = h.as_mut() {
                    h.update(b);
                }
            }
            piece
        })
        .chain(
            futures::stream::once(async move {
                let h = done.lock().ok().and_then(|mut h| h.take());
                if let (Some(h), Some(a), Some(out)) = (h, algorithm, out) {
                    if let (Some(v), Ok(mut out)) = (the_value(h.finalize()), out.lock()) {
                        out.insert(a, v);
                    }
                }
            })
            .filter_map(|()| async { None }),
        );
    (body, late)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(v: u64, width: usize) -> String {
        STANDARD.encode(&v.to_be_bytes()[8 - width..])
    }

    /// Combining the parts' CRCs gives the CRC of the whole, for every CRC S3 offers.
    #[test]
    fn full_object_crcs_combine_to_the_whole_objects() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let cuts = [0, 5, 40_000, 40_001, 99_000, 100_000];
        for (name, crc, width) in [
            ("CRC32", CrcAlgorithm::Crc32IsoHdlc, 4),
            ("CRC32C", CrcAlgorithm::Crc32Iscsi, 4),
            ("CRC64NVME", CrcAlgorithm::Crc64Nvme, 8),
        ] {
            let parts: Vec<(String, u64)> = cuts
                .windows(2)
                .map(|w| {
                    let p = &data[w[0]..w[1]];
                    (b64(crc_fast::checksum(crc, p), width), p.len() as u64)
                })
                .collect();
            let whole = b64(crc_fast::checksum(crc, &data), width);
            assert_eq!(of_parts(name, FULL_OBJECT, &parts), Ok(whole), "{name}");
        }
    }

    /// A composite checksum is the algorithm over the parts' raw checksums, then `-N`.
    #[test]
    fn composite_is_the_checksum_of_the_checksums() {
        let a = STANDARD.encode([1u8, 2, 3, 4]);
        let b = STANDARD.encode([5u8, 6, 7, 8]);
        let crc = crc_fast::checksum(CrcAlgorithm::Crc32IsoHdlc, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let want = format!("{}-2", b64(crc, 4));
        assert_eq!(of_parts("CRC32", COMPOSITE, &[(a, 10), (b, 20)]), Ok(want));
    }

    proptest::proptest! {
        /// Whatever parts' checksums and sizes a client's upload left, computing the object's
        /// checksum answers (a value or a reason), never panics.
        #[test]
        fn any_parts_give_an_answer(
            parts in proptest::collection::vec(("\\PC{0,16}", proptest::prelude::any::<u64>()), 0..6),
            raw in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..10), 0..6),
        ) {
            let mut all = parts;
            all.extend(raw.iter().map(|r| (STANDARD.encode(r), r.len() as u64)));
            for a in ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256", "MD5", ""] {
                for k in [COMPOSITE, FULL_OBJECT, "OTHER"] {
                    let _ = of_parts(a, k, &all);
                }
            }
        }
    }

    #[test]
    fn bad_part_checksums_and_combinations_are_refused() {
        let p = |c: &str| vec![(c.to_string(), 1)];
        assert!(of_parts("CRC32", FULL_OBJECT, &p("not base64!")).is_err());
        assert!(of_parts("CRC32", FULL_OBJECT, &p(&STANDARD.encode([1u8; 8]))).is_err());
        assert!(of_parts("SHA256", FULL_OBJECT, &p(&STANDARD.encode([1u8; 32]))).is_err());
        assert!(!allowed("CRC64NVME", COMPOSITE) && !allowed("SHA1", FULL_OBJECT));
        assert!(allowed("CRC32C", FULL_OBJECT) && allowed("SHA256", COMPOSITE));
        assert_eq!(default_type("CRC64NVME"), FULL_OBJECT);
    }
}

//! Virtual-hosted-style addressing: `bucket.DOMAIN` for the configured domains; any other Host
//! (an IP address, an unlisted name) means path-style.

use s3s::host::{S3Host, VirtualHost};
use s3s::S3Result;

/// The domains under which buckets are addressed as subdomains.
pub struct VirtualHosts {
    domains: Vec<String>,
}

impl VirtualHosts {
    /// Hosts for `domains` (lowercased, without ports).
    pub fn new(domains: &[String]) -> VirtualHosts {
        let mut domains: Vec<String> = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
        // Most specific first: `b.s3.localhost` is bucket `b` under `s3.localhost`.
        domains.sort_by_key(|d| std::cmp::Reverse(d.len()));
        VirtualHosts { domains }
    }

    /// The bucket named by a Host header, if it is a subdomain of a configured domain.
    pub fn bucket_of(&self, host: &str) -> Option<String> {
        let name = if host.starts_with('[') {
            return None;
        } else {
            host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host)
        };
        let name = name.to_ascii_lowercase();
        self.domains.iter().find_map(|d| {
            name.strip_suffix(d.as_str())
                .and_then(|p| p.strip_suffix('.'))
                .filter(|b| !b.is_empty())
                .map(String::from)
        })
    }
}

impl S3Host for VirtualHosts {
    fn parse_host_header<'a>(&'a self, host: &'a str) -> S3Result<VirtualHost<'a>> {
        Ok(match self.bucket_of(host) {
            Some(b) => VirtualHost::new(host).with_bucket(b),
            None => VirtualHost::new(host),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_from_hosts() {
        let v = VirtualHosts::new(&[
            "localhost".into(),
            "s3.example.com".into(),
            "s3.localhost".into(),
        ]);
        assert_eq!(
            v.bucket_of("photos.s3.localhost:8443").as_deref(),
            Some("photos")
        );
        assert_eq!(
            v.bucket_of("photos.localhost:8443").as_deref(),
            Some("photos")
        );
        assert_eq!(v.bucket_of("a.b.s3.example.com").as_deref(), Some("a.b"));
        assert_eq!(v.bucket_of("localhost:8443"), None);
        assert_eq!(v.bucket_of("127.0.0.1:8443"), None);
        assert_eq!(v.bucket_of("other.host"), None);
        assert_eq!(v.bucket_of("[::1]:8443"), None);
        assert_eq!(v.bucket_of("xlocalhost"), None);
    }
}

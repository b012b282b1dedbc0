//! CORS: a bucket's rules (PutBucketCors) and which one answers a browser's request. The HTTP
//! side (preflight answers, `Access-Control-*` headers) is the S3 door's; the rules and their
//! matching are here, with the bucket record that keeps them.

pub use crate::meta::access::{CorsConfig, CorsRule};

use crate::error::{Error, Result};
use crate::object::Engine;

use super::policy::glob;

/// Most rules a bucket may have (as S3).
pub const MAX_RULES: usize = 100;
/// The methods a rule may allow.
pub const METHODS: [&str; 5] = ["GET", "PUT", "HEAD", "POST", "DELETE"];

fn invalid(why: String) -> Error {
    Error::InvalidCors(why)
}

impl CorsConfig {
    /// Checks the rules as S3 does (`InvalidCors` with the reason).
    pub fn validate(&self) -> Result<()> {
        if self.rules.is_empty() {
            return Err(invalid(
                "a CORS configuration needs at least one rule".into(),
            ));
        }
        if self.rules.len() > MAX_RULES {
            return Err(invalid(format!(
                "a CORS configuration has at most {MAX_RULES} rules, not {}",
                self.rules.len()
            )));
        }
        for r in &self.rules {
            if r.allowed_origins.is_empty() || r.allowed_methods.is_empty() {
                return Err(invalid(
                    "each CORS rule needs an AllowedOrigin and an AllowedMethod".into(),
                ));
            }
            if let Some(m) = r
                .allowed_methods
                .iter()
                .find(|m| !METHODS.contains(&m.as_str()))
            {
                return Err(invalid(format!(
                    "Found unsupported HTTP method in CORS config. Unsupported method is {m}"
                )));
            }
            for o in &r.allowed_origins {
                if o.matches('*').count() > 1 {
                    return Err(invalid(format!(
                        "AllowedOrigin \"{o}\" can not have more than one wildcard."
                    )));
                }
            }
            for h in &r.allowed_headers {
                if h.matches('*').count() > 1 {
                    return Err(invalid(format!(
                        "AllowedHeader \"{h}\" can not have more than one wildcard."
                    )));
                }
            }
            if r.id.as_ref().is_some_and(|i| i.len() > 255) {
                return Err(invalid("a CORS rule's ID is at most 255 characters".into()));
            }
        }
        Ok(())
    }

    /// The first rule that allows `origin` to use `method`, and (for a preflight) every one of
    /// `request_headers`.
    pub fn matching(
        &self,
        origin: &str,
        method: &str,
        request_headers: &[&str],
    ) -> Option<&CorsRule> {
        self.rules.iter().find(|r| {
            r.allowed_origins
                .iter()
                .any(|o| glob(o.as_bytes(), origin.as_bytes(), false))
                && r.allowed_methods.iter().any(|m| m == method)
                && request_headers.iter().all(|h| {
                    r.allowed_headers
                        .iter()
                        .any(|a| glob(a.as_bytes(), h.as_bytes(), true))
                })
        })
    }
}

impl Engine {
    /// Sets a bucket's CORS rules (checked first).
    pub async fn set_bucket_cors(&self, bucket: &str, cors: CorsConfig) -> Result<()> {
        cors.validate()?;
        self.update_bucket(bucket, move |rec, _| {
            rec.cors = Some(cors.clone());
            Ok(())
        })
        .await
    }

    /// A bucket's CORS rules (`None`: none).
    pub fn bucket_cors(&self, bucket: &str) -> Result<Option<CorsConfig>> {
        let txn = self.read_settings()?;
        Ok(crate::object::version::bucket_record(&txn, bucket)?.cors)
    }

    /// Removes a bucket's CORS rules.
    pub async fn delete_bucket_cors(&self, bucket: &str) -> Result<()> {
        self.update_bucket(bucket, |rec, _| {
            rec.cors = None;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(origins: &[&str], methods: &[&str], headers: &[&str]) -> CorsRule {
        CorsRule {
            allowed_origins: origins.iter().map(|s| s.to_string()).collect(),
            allowed_methods: methods.iter().map(|s| s.to_string()).collect(),
            allowed_headers: headers.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn first_matching_rule_answers() {
        let c = CorsConfig {
            rules: vec![
                rule(
                    &["https://app.example.com"],
                    &["PUT", "POST"],
                    &["content-type", "x-amz-*"],
                ),
                rule(&["https://*.example.com"], &["GET"], &[]),
                rule(&["*"], &["HEAD"], &["*"]),
            ],
        };
        c.validate().unwrap();
        let m = |o, me, h: &[&str]| c.matching(o, me, h).map(|r| r.allowed_origins[0].clone());
        assert_eq!(
            m(
                "https://app.example.com",
                "PUT",
                &["Content-Type", "x-amz-date"]
            )
            .as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            m("https://app.example.com", "PUT", &["authorization"]),
            None
        );
        assert_eq!(
            m("https://cdn.example.com", "GET", &[]).as_deref(),
            Some("https://*.example.com")
        );
        assert_eq!(m("https://evil.com", "GET", &[]), None);
        assert_eq!(
            m("https://evil.com", "HEAD", &["anything"]).as_deref(),
            Some("*")
        );
        assert_eq!(m("https://app.example.com", "DELETE", &[]), None);
    }

    #[test]
    fn invalid_rules_say_why() {
        let bad = |r: CorsRule| {
            CorsConfig { rules: vec![r] }
                .validate()
                .unwrap_err()
                .to_string()
        };
        assert!(bad(rule(&["*"], &["PATCH"], &[])).contains("PATCH"));
        assert!(bad(rule(&["https://*.*.com"], &["GET"], &[])).contains("wildcard"));
        assert!(bad(rule(&[], &["GET"], &[])).contains("AllowedOrigin"));
        assert!(CorsConfig::default().validate().is_err());
    }
}

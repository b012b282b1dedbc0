//! The records of access control as they are stored in bucket and object records: ACLs,
//! PublicAccessBlock, CORS rules and a policy's id. What they mean, and the operations on
//! them, are the access layer's (`crate::access`), which sits above the object layer; the
//! records sit here, below both, with the others.

use serde::{Deserialize, Serialize};

/// Who an ACL grant is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Grantee {
    /// Everyone, anonymous requests included.
    AllUsers,
    /// Every signed request.
    AuthenticatedUsers,
    /// A key of the store (its access key id; S3's canonical user id here).
    Key(String),
}

/// What an ACL grant allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Permission {
    /// Bucket: list it. Object: read it.
    Read,
    /// Bucket: write and delete its objects.
    Write,
    /// Read the ACL.
    ReadAcp,
    /// Write the ACL.
    WriteAcp,
    /// All four.
    FullControl,
}

/// One grant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AclGrant {
    /// To whom.
    pub grantee: Grantee,
    /// What.
    pub permission: Permission,
}

/// An ACL: the owner's full control is implied; these are the grants beyond it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acl {
    /// The grants.
    pub grants: Vec<AclGrant>,
}

/// A bucket's PublicAccessBlock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    /// Refuse requests that set a public ACL.
    pub block_public_acls: bool,
    /// Public ACLs grant nothing.
    pub ignore_public_acls: bool,
    /// Refuse a public bucket policy.
    pub block_public_policy: bool,
    /// A public policy grants nothing to anonymous requests.
    pub restrict_public_buckets: bool,
}

/// One rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsRule {
    /// `ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `AllowedOrigin`: origins, each with at most one `*`.
    pub allowed_origins: Vec<String>,
    /// `AllowedMethod`.
    pub allowed_methods: Vec<String>,
    /// `AllowedHeader`: request headers a preflight may ask for (each with at most one `*`).
    #[serde(default)]
    pub allowed_headers: Vec<String>,
    /// `ExposeHeader`: response headers scripts may read.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// `MaxAgeSeconds`: how long a browser may keep a preflight's answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age_secs: Option<i32>,
}

/// A bucket's rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorsConfig {
    /// In order: the first that matches answers.
    pub rules: Vec<CorsRule>,
}

/// A bucket policy's id: random per PutBucketPolicy, so the parsed form is cached under it
/// (the document itself is in the `policies` table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyId(pub u64);

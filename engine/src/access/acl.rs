//! ACLs, in the forms clients send them (canned ACLs, `x-amz-grant-*` headers, grant lists),
//! and the bucket settings that limit them: PublicAccessBlock and OwnershipControls.
//!
//! Ownership is always the bucket owner's (S3's `BucketOwnerEnforced`): an object belongs to
//! its bucket's owner whoever wrote it, and an ACL only ever grants more — to everyone
//! (`AllUsers`), to every signed request (`AuthenticatedUsers`), or to keys of the store.

pub use crate::meta::access::{Acl, AclGrant, Grantee, Permission, PublicAccessBlock};

use super::action::{Action, Class};

impl Permission {
    /// S3's name (`READ`, `FULL_CONTROL`, …).
    pub fn name(self) -> &'static str {
        match self {
            Permission::Read => "READ",
            Permission::Write => "WRITE",
            Permission::ReadAcp => "READ_ACP",
            Permission::WriteAcp => "WRITE_ACP",
            Permission::FullControl => "FULL_CONTROL",
        }
    }

    /// The permission named `s`.
    pub fn parse(s: &str) -> Option<Permission> {
        [
            Permission::Read,
            Permission::Write,
            Permission::ReadAcp,
            Permission::WriteAcp,
            Permission::FullControl,
        ]
        .into_iter()
        .find(|p| p.name() == s)
    }
}

/// The group URIs of S3's ACLs.
pub const ALL_USERS_URI: &str = "http://acs.amazonaws.com/groups/global/AllUsers";
/// See [`ALL_USERS_URI`].
pub const AUTHENTICATED_USERS_URI: &str =
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers";

impl Acl {
    /// A canned ACL (`x-amz-acl`); `None` for a name S3 does not have.
    pub fn canned(name: &str) -> Option<Acl> {
        let g = |grantee, permission| AclGrant {
            grantee,
            permission,
        };
        let grants = match name {
            "private"
            | "bucket-owner-read"
            | "bucket-owner-full-control"
            | "aws-exec-read"
            | "log-delivery-write" => vec![],
            "public-read" => vec![g(Grantee::AllUsers, Permission::Read)],
            "public-read-write" => vec![
                g(Grantee::AllUsers, Permission::Read),
                g(Grantee::AllUsers, Permission::Write),
            ],
            "authenticated-read" => vec![g(Grantee::AuthenticatedUsers, Permission::Read)],
            _ => return None,
        };
        Some(Acl { grants })
    }

    /// Whether it grants anything to everyone or to every signed request (S3's "public").
    pub fn is_public(&self) -> bool {
        self.grants
            .iter()
            .any(|g| matches!(g.grantee, Grantee::AllUsers | Grantee::AuthenticatedUsers))
    }

    /// Whether it lets `caller` (`None`: anonymous; `Some(id)`: a signed key, `""` for an
    /// administrator) do `action`; `on_object`: the ACL is an object's (else its bucket's).
    /// With `ignore_public`, grants to groups count for nothing (IgnorePublicAcls).
    pub fn allows(
        &self,
        caller: Option<&str>,
        action: Action,
        on_object: bool,
        ignore_public: bool,
    ) -> bool {
        self.grants.iter().any(|g| {
            let who = match &g.grantee {
                Grantee::AllUsers => !ignore_public,
                Grantee::AuthenticatedUsers => !ignore_public && caller.is_some(),
                Grantee::Key(id) => caller == Some(id.as_str()),
            };
            who && covers(g.permission, action, on_object)
        })
    }
}

/// Whether permission `p` of a bucket's (or an object's) ACL covers `action`.
fn covers(p: Permission, action: Action, on_object: bool) -> bool {
    use Action as A;
    let read = if on_object {
        matches!(action, A::GetObject | A::GetObjectVersion)
    } else {
        matches!(
            action,
            A::ListBucket | A::ListBucketVersions | A::ListBucketMultipartUploads
        )
    };
    let write = !on_object
        && action.class() == Class::Write
        && matches!(
            action,
            A::PutObject | A::DeleteObject | A::DeleteObjectVersion | A::AbortMultipartUpload
        );
    let read_acp = if on_object {
        matches!(action, A::GetObjectAcl | A::GetObjectVersionAcl)
    } else {
        action == A::GetBucketAcl
    };
    let write_acp = if on_object {
        matches!(action, A::PutObjectAcl | A::PutObjectVersionAcl)
    } else {
        action == A::PutBucketAcl
    };
    match p {
        Permission::Read => read,
        Permission::Write => write,
        Permission::ReadAcp => read_acp,
        Permission::WriteAcp => write_acp,
        Permission::FullControl => read || write || read_acp || write_acp,
    }
}

/// S3's object ownership settings (`OwnershipControls`); the behaviour is always
/// `BucketOwnerEnforced`'s ownership, the setting is kept and answered.
pub const OWNERSHIP: [&str; 3] = [
    "BucketOwnerEnforced",
    "BucketOwnerPreferred",
    "ObjectWriter",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_acls() {
        assert!(Acl::canned("private").unwrap().grants.is_empty());
        assert!(Acl::canned("public-read").unwrap().is_public());
        assert!(Acl::canned("authenticated-read").unwrap().is_public());
        assert!(!Acl::canned("bucket-owner-full-control")
            .unwrap()
            .is_public());
        assert!(Acl::canned("public").is_none());
    }

    #[test]
    fn grants_by_grantee_and_permission() {
        let rw = Acl::canned("public-read-write").unwrap();
        assert!(rw.allows(None, Action::ListBucket, false, false));
        assert!(rw.allows(None, Action::PutObject, false, false));
        assert!(!rw.allows(None, Action::PutBucketAcl, false, false));
        assert!(
            !rw.allows(None, Action::ListBucket, false, true),
            "IgnorePublicAcls"
        );
        let auth = Acl::canned("authenticated-read").unwrap();
        assert!(!auth.allows(None, Action::GetObject, true, false));
        assert!(auth.allows(Some("PK1"), Action::GetObject, true, false));
        assert!(!auth.allows(Some("PK1"), Action::PutObject, true, false));
        let k = Acl {
            grants: vec![AclGrant {
                grantee: Grantee::Key("PK1".into()),
                permission: Permission::FullControl,
            }],
        };
        assert!(k.allows(Some("PK1"), Action::PutObjectAcl, true, true));
        assert!(k.allows(Some("PK1"), Action::GetObjectVersion, true, false));
        assert!(!k.allows(Some("PK2"), Action::GetObject, true, false));
        assert!(!k.allows(Some("PK1"), Action::DeleteObject, true, false));
    }
}

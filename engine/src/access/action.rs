//! The actions a request may need permission for, with S3's IAM names (`s3:GetObject`, …),
//! and what a key grant (`read`, `write`, `owner`) covers.

/// Which kind of key grant covers an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Reading objects and listing them: the `read` grant.
    Read,
    /// Writing and deleting objects: the `write` grant.
    Write,
    /// The bucket's configuration (policy, ACL, CORS, versioning, lifecycle, …) and its
    /// deletion: the `owner` grant.
    Config,
    /// Learning that the bucket exists and where (HeadBucket, GetBucketLocation): any grant.
    Any,
    /// Not about one bucket (ListAllMyBuckets, CreateBucket): decided by the key itself.
    Service,
}

/// What a resource an action applies to is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// An object: `arn:aws:s3:::bucket/key`.
    Object,
    /// A bucket: `arn:aws:s3:::bucket`.
    Bucket,
    /// The service (`*`).
    Service,
}

macro_rules! actions {
    ($($name:ident: $class:ident $target:ident,)*) => {
        /// An action, named as in S3's IAM policies (without the `s3:` prefix).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $(
                #[allow(missing_docs)]
                $name,
            )*
        }

        impl Action {
            /// Every action.
            pub const ALL: &'static [Action] = &[$(Action::$name,)*];

            /// Its IAM name without the `s3:` prefix (`GetObject`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Action::$name => stringify!($name),)*
                }
            }

            /// The grant that covers it.
            pub fn class(self) -> Class {
                match self {
                    $(Action::$name => Class::$class,)*
                }
            }

            /// What it applies to.
            pub fn target(self) -> Target {
                match self {
                    $(Action::$name => Target::$target,)*
                }
            }
        }
    };
}

actions! {
    ListAllMyBuckets: Service Service,
    CreateBucket: Service Bucket,

    GetObject: Read Object,
    GetObjectVersion: Read Object,
    GetObjectTagging: Read Object,
    GetObjectVersionTagging: Read Object,
    GetObjectAttributes: Read Object,
    GetObjectVersionAttributes: Read Object,
    GetObjectAcl: Read Object,
    GetObjectVersionAcl: Read Object,
    GetObjectRetention: Read Object,
    GetObjectLegalHold: Read Object,
    ListMultipartUploadParts: Read Object,
    ListBucket: Read Bucket,
    ListBucketVersions: Read Bucket,
    ListBucketMultipartUploads: Read Bucket,

    PutObject: Write Object,
    PutObjectTagging: Write Object,
    PutObjectVersionTagging: Write Object,
    DeleteObjectTagging: Write Object,
    DeleteObjectVersionTagging: Write Object,
    DeleteObject: Write Object,
    DeleteObjectVersion: Write Object,
    AbortMultipartUpload: Write Object,
    PutObjectAcl: Write Object,
    PutObjectVersionAcl: Write Object,
    PutObjectRetention: Write Object,
    PutObjectLegalHold: Write Object,
    BypassGovernanceRetention: Write Object,
    RestoreObject: Write Object,

    GetBucketLocation: Any Bucket,

    DeleteBucket: Config Bucket,
    GetBucketPolicy: Config Bucket,
    PutBucketPolicy: Config Bucket,
    DeleteBucketPolicy: Config Bucket,
    GetBucketPolicyStatus: Config Bucket,
    GetBucketAcl: Config Bucket,
    PutBucketAcl: Config Bucket,
    GetBucketCORS: Config Bucket,
    PutBucketCORS: Config Bucket,
    GetBucketVersioning: Config Bucket,
    PutBucketVersioning: Config Bucket,
    GetBucketTagging: Config Bucket,
    PutBucketTagging: Config Bucket,
    GetLifecycleConfiguration: Config Bucket,
    PutLifecycleConfiguration: Config Bucket,
    GetBucketObjectLockConfiguration: Config Bucket,
    PutBucketObjectLockConfiguration: Config Bucket,
    GetBucketPublicAccessBlock: Config Bucket,
    PutBucketPublicAccessBlock: Config Bucket,
    GetBucketOwnershipControls: Config Bucket,
    PutBucketOwnershipControls: Config Bucket,
    GetBucketNotification: Config Bucket,
    PutBucketNotification: Config Bucket,
    GetEncryptionConfiguration: Config Bucket,
    PutEncryptionConfiguration: Config Bucket,
    GetBucketLogging: Config Bucket,
    PutBucketLogging: Config Bucket,
    GetBucketWebsite: Config Bucket,
    PutBucketWebsite: Config Bucket,
    DeleteBucketWebsite: Config Bucket,
    GetReplicationConfiguration: Config Bucket,
    PutReplicationConfiguration: Config Bucket,
    GetBucketRequestPayment: Config Bucket,
    PutBucketRequestPayment: Config Bucket,
    GetAccelerateConfiguration: Config Bucket,
    PutAccelerateConfiguration: Config Bucket,
    GetAnalyticsConfiguration: Config Bucket,
    PutAnalyticsConfiguration: Config Bucket,
    GetInventoryConfiguration: Config Bucket,
    PutInventoryConfiguration: Config Bucket,
    GetMetricsConfiguration: Config Bucket,
    PutMetricsConfiguration: Config Bucket,
    GetIntelligentTieringConfiguration: Config Bucket,
    PutIntelligentTieringConfiguration: Config Bucket,
}

impl Action {
    /// The action named `name` (`s3:GetObject` or `GetObject`, case-insensitive as in IAM).
    pub fn parse(name: &str) -> Option<Action> {
        let bare = strip_service(name)?;
        Action::ALL
            .iter()
            .copied()
            .find(|a| a.name().eq_ignore_ascii_case(bare))
    }

    /// Its position in [`Action::ALL`] (below 128: sets of actions are `u128` masks).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the action applies to an object (its resource is `bucket/key`).
    pub fn on_object(self) -> bool {
        self.target() == Target::Object
    }
}

/// `name` without its `s3:` service prefix (case-insensitive); `None` for another service.
pub(crate) fn strip_service(name: &str) -> Option<&str> {
    let (service, rest) = name.split_once(':')?;
    service.eq_ignore_ascii_case("s3").then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_fit_a_mask() {
        assert!(Action::ALL.len() <= 128);
        for (i, a) in Action::ALL.iter().enumerate() {
            assert_eq!(a.index(), i);
        }
    }

    #[test]
    fn names_parse_back() {
        for a in Action::ALL {
            assert_eq!(Action::parse(&format!("s3:{}", a.name())), Some(*a));
            assert_eq!(
                Action::parse(&format!("S3:{}", a.name().to_lowercase())),
                Some(*a)
            );
        }
        assert_eq!(Action::parse("GetObject"), None);
        assert_eq!(Action::parse("iam:GetObject"), None);
        assert_eq!(Action::parse("s3:GetObjects"), None);
    }
}

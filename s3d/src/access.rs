//! The S3 layer's access hook: called for every request it has routed, with the operation's
//! name, before the operation runs. Here it names the operation for the access log and the
//! metrics ([`RoutedOp`]) and, as the S3 layer does by default, refuses unsigned requests.
//! (Per-key permissions will be decided here.)

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use s3s::access::{S3Access, S3AccessContext};
use s3s::{s3_error, S3Result};

/// Where the S3 layer leaves the name of the operation it routed a request to; put into the
/// request's extensions before the request goes in, read once the response is out.
#[derive(Clone, Default)]
pub struct RoutedOp(Arc<OnceLock<&'static str>>);

impl RoutedOp {
    /// The routed operation's name (`GetBucketPolicy`, `UploadPartCopy`, …); `None` when the
    /// request never reached routing (a bad signature, a malformed path).
    pub fn get(&self) -> Option<&'static str> {
        self.0.get().copied()
    }

    fn set(&self, name: &str) {
        let _ = self.0.set(intern(name));
    }
}

/// Operation names as `&'static str` (the metrics key on them). The S3 layer knows about a
/// hundred operations: the set stays that small.
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let Ok(mut names) = NAMES.get_or_init(Default::default).lock() else {
        return "Other";
    };
    if let Some(n) = names.get(name) {
        return n;
    }
    let n: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(n);
    n
}

/// The access hook.
pub struct Access;

#[async_trait::async_trait]
impl S3Access for Access {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let name = cx.s3_op().name().to_string();
        if let Some(slot) = cx.extensions_mut().get::<RoutedOp>() {
            slot.set(&name);
        }
        match cx.credentials() {
            Some(_) => Ok(()),
            None => Err(s3_error!(AccessDenied, "Signature is required")),
        }
    }
}

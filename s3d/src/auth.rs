//! The keys s3s checks signatures against: the configured ones (administrators), then the
//! keys of the store (usable ones only: not disabled, not expired).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Result};

use crate::config::KeyPair;

/// The configured key pairs and the engine holding the others.
pub struct KeyStore {
    admins: HashMap<String, String>,
    engine: engine::Engine,
}

impl KeyStore {
    /// The configured `pairs` (administrators) and the keys of `engine`.
    pub fn new(pairs: &[KeyPair], engine: engine::Engine) -> KeyStore {
        KeyStore {
            admins: pairs
                .iter()
                .map(|k| (k.access_key.clone(), k.secret_key.clone()))
                .collect(),
            engine,
        }
    }

    /// The secret of `access_key` and who it makes the caller: a configured key
    /// (administrator) or a usable key of the store.
    pub fn lookup(&self, access_key: &str) -> Result<(String, engine::Principal), KeyLookup> {
        if let Some(s) = self.admins.get(access_key) {
            return Ok((s.clone(), engine::Principal::Admin));
        }
        match self.engine.key_by_id(access_key) {
            Err(e) => {
                tracing::error!("reading the key store: {e}");
                Err(KeyLookup::Internal)
            }
            Ok(Some(k)) if k.usable(engine::meta::now_ns()) => {
                Ok((k.secret, engine::Principal::Key(access_key.to_string())))
            }
            Ok(Some(_)) => Err(KeyLookup::Unusable),
            Ok(None) => Err(KeyLookup::Unknown),
        }
    }

    /// The access key ids of the administrators.
    pub fn admin_ids(&self) -> Arc<HashSet<String>> {
        Arc::new(self.admins.keys().cloned().collect())
    }
}

/// Why a key cannot sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLookup {
    /// No such key.
    Unknown,
    /// Disabled or expired.
    Unusable,
    /// The key store could not be read.
    Internal,
}

impl KeyLookup {
    /// S3's code and message for it.
    pub fn code_and_message(self) -> (&'static str, &'static str) {
        match self {
            KeyLookup::Unknown => (
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            ),
            KeyLookup::Unusable => (
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided is disabled or expired.",
            ),
            KeyLookup::Internal => (
                "InternalError",
                "We encountered an internal error. Please try again.",
            ),
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyStore {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.lookup(access_key) {
            Ok((secret, _)) => Ok(SecretKey::from(secret)),
            Err(KeyLookup::Internal) => Err(s3_error!(
                InternalError,
                "We encountered an internal error. Please try again."
            )),
            Err(KeyLookup::Unusable) => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided is disabled or expired."
            )),
            Err(KeyLookup::Unknown) => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

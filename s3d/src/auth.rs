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

    /// The access key ids of the administrators.
    pub fn admin_ids(&self) -> Arc<HashSet<String>> {
        Arc::new(self.admins.keys().cloned().collect())
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyStore {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        if let Some(s) = self.admins.get(access_key) {
            return Ok(SecretKey::from(s.clone()));
        }
        let stored = self.engine.key_by_id(access_key).map_err(|e| {
            tracing::error!("reading the key store: {e}");
            s3_error!(
                InternalError,
                "We encountered an internal error. Please try again."
            )
        })?;
        match stored {
            Some(k) if k.usable(engine::meta::now_ns()) => Ok(SecretKey::from(k.secret)),
            Some(_) => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided is disabled or expired."
            )),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

//! The key store s3s checks signatures against.

use std::collections::HashMap;

use s3s::auth::{S3Auth, SecretKey};
use s3s::{s3_error, S3Result};

use crate::config::KeyPair;

/// Configured access key pairs.
pub struct KeyStore {
    keys: HashMap<String, String>,
}

impl KeyStore {
    /// A store of `pairs`.
    pub fn new(pairs: &[KeyPair]) -> KeyStore {
        KeyStore {
            keys: pairs
                .iter()
                .map(|k| (k.access_key.clone(), k.secret_key.clone()))
                .collect(),
        }
    }
}

#[async_trait::async_trait]
impl S3Auth for KeyStore {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        match self.keys.get(access_key) {
            Some(s) => Ok(SecretKey::from(s.clone())),
            None => Err(s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )),
        }
    }
}

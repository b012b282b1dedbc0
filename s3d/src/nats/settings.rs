//! The `nats:` section and `PREDASTORE_NATS_*` variables (variables win), checked.

use std::path::PathBuf;

use startup::config::NatsSection;

/// How s3d proves itself to the NATS server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsAuth {
    /// Nothing (a server without authorization, or a TLS client certificate alone).
    None,
    /// User and password.
    UserPassword(String, String),
    /// Token.
    Token(String),
    /// NKey seed.
    NKey(String),
}

/// Resolved NATS settings.
#[derive(Debug, Clone)]
pub struct NatsSettings {
    /// Server URL(s), comma-separated.
    pub url: String,
    /// Credentials.
    pub auth: NatsAuth,
    /// CA to trust for the server's certificate.
    pub ca: Option<PathBuf>,
    /// Client certificate and key.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// First token of every subject.
    pub prefix: String,
    /// Queue group of the request subscriptions.
    pub queue_group: String,
    /// Seconds a signed request stays valid either side of its date.
    pub replay_window: u64,
    /// The JetStream stream s3d makes for `PREFIX.events.>` (`None`: events on core NATS).
    pub events_stream: Option<String>,
}

impl NatsSettings {
    /// Whether the connection is TLS (the URL says so, or certificates are given).
    pub fn tls(&self) -> bool {
        self.url.split(',').all(|u| u.trim().starts_with("tls://"))
            || self.ca.is_some()
            || self.client_cert.is_some()
    }
}

fn valid_subject_part(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        })
}

/// `None` when NATS is not configured (no URL).
pub fn resolve(
    file: &NatsSection,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<NatsSettings>, String> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    let Some(url) = var("PREDASTORE_NATS_URL").or_else(|| file.url.clone()) else {
        return Ok(None);
    };
    let user = var("PREDASTORE_NATS_USER").or_else(|| file.user.clone());
    let password = var("PREDASTORE_NATS_PASSWORD").or_else(|| file.password.clone());
    let token = var("PREDASTORE_NATS_TOKEN").or_else(|| file.token.clone());
    let seed_file = var("PREDASTORE_NATS_NKEY_SEED_FILE")
        .map(PathBuf::from)
        .or_else(|| file.nkey_seed_file.clone());
    let mut seed = var("PREDASTORE_NATS_NKEY_SEED").or_else(|| file.nkey_seed.clone());
    if let Some(p) = seed_file {
        if seed.is_some() {
            return Err("nats: give the NKey seed or its file, not both".into());
        }
        let text = std::fs::read_to_string(&p)
            .map_err(|e| format!("nats: NKey seed file {}: {e}", p.display()))?;
        seed = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("SU"))
            .map(str::to_string);
        if seed.is_none() {
            return Err(format!(
                "nats: {} holds no user NKey seed (SU…)",
                p.display()
            ));
        }
    }
    let auth = match (user, password, token, seed) {
        (None, None, None, None) => NatsAuth::None,
        (Some(u), Some(p), None, None) => NatsAuth::UserPassword(u, p),
        (None, None, Some(t), None) => NatsAuth::Token(t),
        (None, None, None, Some(s)) => NatsAuth::NKey(s),
        (Some(_), None, _, _) | (None, Some(_), _, _) => {
            return Err("nats: user and password must be given together".into())
        }
        _ => {
            return Err("nats: give one of user/password, token or NKey seed (not several)".into())
        }
    };
    let ca = var("PREDASTORE_NATS_CA")
        .map(PathBuf::from)
        .or_else(|| file.tls.ca.clone());
    let cert = var("PREDASTORE_NATS_CERT")
        .map(PathBuf::from)
        .or_else(|| file.tls.cert.clone());
    let key = var("PREDASTORE_NATS_KEY")
        .map(PathBuf::from)
        .or_else(|| file.tls.key.clone());
    let client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err("nats: a client certificate and its key must be given together".into()),
    };
    let prefix = var("PREDASTORE_NATS_SUBJECT_PREFIX")
        .or_else(|| file.subject_prefix.clone())
        .unwrap_or_else(|| "s3".into());
    if !valid_subject_part(&prefix) {
        return Err(format!(
            "nats: subject prefix {prefix:?} must be tokens of A-Z, a-z, 0-9, _ and - separated by dots"
        ));
    }
    let queue_group = var("PREDASTORE_NATS_QUEUE_GROUP")
        .or_else(|| file.queue_group.clone())
        .unwrap_or_else(|| "predastore".into());
    if !valid_subject_part(&queue_group) {
        return Err(format!(
            "nats: queue group {queue_group:?} is not a valid name"
        ));
    }
    let replay_window = file.replay_window_secs.unwrap_or(300).clamp(1, 3600);
    let events_stream = match file.events_stream.as_deref() {
        None => Some("PREDASTORE_EVENTS".to_string()),
        Some("") => None,
        Some(n)
            if n.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-') =>
        {
            Some(n.to_string())
        }
        Some(n) => return Err(format!("nats: events_stream {n:?} is not a stream name")),
    };
    Ok(Some(NatsSettings {
        url,
        auth,
        ca,
        client_cert,
        prefix,
        queue_group,
        replay_window,
        events_stream,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(yaml: &str, env: &[(&str, &str)]) -> Result<Option<NatsSettings>, String> {
        let f: NatsSection = serde_yaml_ng::from_str(yaml).unwrap();
        resolve(&f, |k| {
            env.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn off_unless_a_url_is_given_and_variables_win() {
        assert!(from("{}", &[]).unwrap().is_none());
        let s = from("{url: nats://a:4222, token: t}", &[])
            .unwrap()
            .unwrap();
        assert_eq!(s.auth, NatsAuth::Token("t".into()));
        assert_eq!(
            (s.prefix.as_str(), s.queue_group.as_str()),
            ("s3", "predastore")
        );
        assert!(!s.tls());
        let s = from(
            "{url: nats://a:4222, subject_prefix: edge.s3}",
            &[
                ("PREDASTORE_NATS_URL", "tls://b:4222"),
                ("PREDASTORE_NATS_USER", "u"),
                ("PREDASTORE_NATS_PASSWORD", "p"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(s.url, "tls://b:4222");
        assert!(s.tls());
        assert_eq!(s.prefix, "edge.s3");
        assert_eq!(s.auth, NatsAuth::UserPassword("u".into(), "p".into()));
    }

    #[test]
    fn contradictions_are_refused_with_the_reason() {
        for (yaml, why) in [
            ("{url: x, user: u}", "together"),
            ("{url: x, token: t, nkey_seed: SUAB}", "not several"),
            ("{url: x, subject_prefix: 'a..b'}", "subject prefix"),
            ("{url: x, subject_prefix: 's3.>'}", "subject prefix"),
            ("{url: x, tls: {cert: /c}}", "together"),
        ] {
            let e = from(yaml, &[]).unwrap_err();
            assert!(e.contains(why), "{yaml}: {e}");
        }
    }
}

//! `s3d key …`: the keys of the store, managed from the command line (with the server running
//! or not: a change is seen by the next request).

use std::process::ExitCode;

use engine::access::{Grant, KeyChange, KeyInfo, NewKey};
use engine::Engine;

/// A `key` subcommand, parsed.
#[derive(Debug, Clone)]
pub enum KeyCommand {
    /// Make a key.
    Create {
        /// Its name.
        name: Option<String>,
        /// Its expiry (see [`parse_when`]).
        expires: Option<String>,
        /// May create buckets.
        create_buckets: bool,
    },
    /// Every key.
    List,
    /// One key.
    Info(String),
    /// Remove a key.
    Delete(String),
    /// Give permissions (a grant on `BUCKET[/PREFIX]`, and/or bucket creation).
    Allow {
        /// The key.
        key: String,
        /// `BUCKET` or `BUCKET/PREFIX`.
        scope: Option<String>,
        /// Read.
        read: bool,
        /// Write.
        write: bool,
        /// Owner.
        owner: bool,
        /// Bucket creation.
        create_buckets: bool,
    },
    /// Take permissions away.
    Deny {
        /// The key.
        key: String,
        /// `BUCKET` or `BUCKET/PREFIX`.
        scope: Option<String>,
        /// Read.
        read: bool,
        /// Write.
        write: bool,
        /// Owner.
        owner: bool,
        /// Bucket creation.
        create_buckets: bool,
    },
    /// Disable or enable.
    Disable(String, bool),
    /// Set or clear the expiry.
    Expire(String, String),
}

/// Parses an expiry: `never`, a number of days (`30d`), a date (`2027-01-31`) or a time
/// (RFC 3339); returns ns since the epoch (`None`: never).
pub fn parse_when(s: &str, now_ns: i64) -> Result<Option<i64>, String> {
    use time::format_description::well_known::Rfc3339;
    if s.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    if let Some(days) = s.strip_suffix('d').and_then(|d| d.parse::<i64>().ok()) {
        if days <= 0 || days > 100 * 366 {
            return Err(format!("{s}: a number of days from 1 to 36600"));
        }
        return Ok(Some(now_ns + days * 86_400 * 1_000_000_000));
    }
    let text = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    let t = time::OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| {
        format!("{s}: not an expiry (use never, 30d, 2027-01-31 or 2027-01-31T12:00:00Z)")
    })?;
    i64::try_from(t.unix_timestamp_nanos())
        .map(Some)
        .map_err(|_| format!("{s}: out of range"))
}

/// `BUCKET` or `BUCKET/PREFIX` with the three flags as a grant.
fn grant(scope: &str, read: bool, write: bool, owner: bool) -> Grant {
    let (bucket, prefix) = scope.split_once('/').unwrap_or((scope, ""));
    Grant {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        read,
        write,
        owner,
    }
}

fn when(ns: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn state(k: &KeyInfo, now: i64) -> &'static str {
    if k.record.disabled {
        "disabled"
    } else if !k.record.usable(now) {
        "expired"
    } else {
        "active"
    }
}

fn show(k: &KeyInfo) {
    let now = engine::meta::now_ns();
    println!("Access key: {}", k.id);
    println!("Name:       {}", k.record.name);
    println!("State:      {}", state(k, now));
    println!("Created:    {}", when(k.record.created_ns));
    println!(
        "Expires:    {}",
        k.record
            .expires_ns
            .map(when)
            .unwrap_or_else(|| "never".into())
    );
    println!(
        "Create buckets: {}",
        if k.record.create_buckets { "yes" } else { "no" }
    );
    if k.record.grants.is_empty() {
        println!("Grants:     none");
    } else {
        println!("Grants:");
        for g in &k.record.grants {
            println!("  {:<40} {}", g.scope(), flags(g));
        }
    }
}

fn flags(g: &Grant) -> String {
    let mut f = Vec::new();
    if g.read {
        f.push("read");
    }
    if g.write {
        f.push("write");
    }
    if g.owner {
        f.push("owner");
    }
    f.join(",")
}

/// Runs `cmd` on `engine`.
pub async fn run(engine: &Engine, cmd: KeyCommand) -> Result<ExitCode, String> {
    let now = engine::meta::now_ns();
    let err = |e: engine::Error| e.to_string();
    if let KeyCommand::Allow {
        scope: None,
        create_buckets: false,
        ..
    }
    | KeyCommand::Deny {
        scope: None,
        create_buckets: false,
        ..
    } = &cmd
    {
        return Err("name a bucket (BUCKET or BUCKET/PREFIX) or --create-buckets".into());
    }
    match cmd {
        KeyCommand::Create {
            name,
            expires,
            create_buckets,
        } => {
            let expires_ns = match expires {
                Some(w) => parse_when(&w, now)?,
                None => None,
            };
            let k = engine
                .create_key(NewKey {
                    name: name.unwrap_or_default(),
                    expires_ns,
                    create_buckets,
                })
                .await
                .map_err(err)?;
            println!("Access key: {}", k.id);
            println!("Secret key: {}", k.record.secret);
            println!("Name:       {}", k.record.name);
            println!("(The secret is shown this once. Give it permissions with `s3d key allow`.)");
        }
        KeyCommand::List => {
            let keys = engine.list_keys().map_err(err)?;
            println!("{:<22} {:<24} {:<9} GRANTS", "ACCESS KEY", "NAME", "STATE");
            for k in &keys {
                let grants: Vec<String> = k
                    .record
                    .grants
                    .iter()
                    .map(|g| format!("{}:{}", g.scope(), flags(g)))
                    .collect();
                println!(
                    "{:<22} {:<24} {:<9} {}",
                    k.id,
                    k.record.name,
                    state(k, now),
                    grants.join(" ")
                );
            }
        }
        KeyCommand::Info(which) => show(&engine.key_info(&which).map_err(err)?),
        KeyCommand::Delete(which) => {
            let k = engine.delete_key(&which).await.map_err(err)?;
            println!("Deleted key {} ({})", k.id, k.record.name);
        }
        KeyCommand::Allow {
            key,
            scope,
            read,
            write,
            owner,
            create_buckets,
        } => {
            if create_buckets {
                engine
                    .change_key(&key, KeyChange::CreateBuckets(true))
                    .await
                    .map_err(err)?;
            }
            if let Some(scope) = scope {
                if !(read || write || owner) {
                    return Err("say what to allow: --read, --write and/or --owner".into());
                }
                engine
                    .change_key(&key, KeyChange::Allow(grant(&scope, read, write, owner)))
                    .await
                    .map_err(err)?;
            }
            show(&engine.key_info(&key).map_err(err)?);
        }
        KeyCommand::Deny {
            key,
            scope,
            read,
            write,
            owner,
            create_buckets,
        } => {
            if create_buckets {
                engine
                    .change_key(&key, KeyChange::CreateBuckets(false))
                    .await
                    .map_err(err)?;
            }
            if let Some(scope) = scope {
                engine
                    .change_key(&key, KeyChange::Deny(grant(&scope, read, write, owner)))
                    .await
                    .map_err(err)?;
            }
            show(&engine.key_info(&key).map_err(err)?);
        }
        KeyCommand::Disable(key, disabled) => {
            let k = engine
                .change_key(&key, KeyChange::Disabled(disabled))
                .await
                .map_err(err)?;
            show(&k);
        }
        KeyCommand::Expire(key, w) => {
            let t = parse_when(&w, now)?;
            let k = engine
                .change_key(&key, KeyChange::Expires(t))
                .await
                .map_err(err)?;
            show(&k);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries() {
        let now = 1_000_000_000_000_000_000;
        assert_eq!(parse_when("never", now), Ok(None));
        assert_eq!(
            parse_when("2d", now),
            Ok(Some(now + 2 * 86_400 * 1_000_000_000))
        );
        assert_eq!(
            parse_when("2027-01-01", now),
            Ok(Some(1_798_761_600 * 1_000_000_000))
        );
        assert!(parse_when("0d", now).is_err());
        assert!(parse_when("tomorrow", now).is_err());
    }

    #[test]
    fn scopes() {
        let g = grant("cams/device-7/", false, true, false);
        assert_eq!(
            (g.bucket.as_str(), g.prefix.as_str()),
            ("cams", "device-7/")
        );
        assert_eq!(grant("cams", true, false, false).prefix, "");
    }
}

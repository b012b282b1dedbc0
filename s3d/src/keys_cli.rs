//! `s3d key …`: the keys of the store, managed from the command line (with the server running
//! or not: a change is seen by the next request).

use std::process::ExitCode;

use engine::access::{Grant, KeyChange, KeyInfo, NewKey};
use engine::Engine;

/// `s3d key …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeyCommand {
    /// Make a key; prints its secret once.
    Create {
        /// A name for it (also how policies name it: arn:aws:iam::…:user/NAME).
        #[arg(long)]
        name: Option<String>,
        /// When it stops working: never, 30d, 2027-01-31 or an RFC 3339 time.
        #[arg(long)]
        expires: Option<String>,
        /// It may create buckets (which it then owns).
        #[arg(long)]
        create_buckets: bool,
    },
    /// Every key, with its state and grants.
    List,
    /// One key (by access key id or name).
    Info {
        /// Access key id or name.
        key: String,
    },
    /// Delete a key.
    Delete {
        /// Access key id or name.
        key: String,
    },
    /// Give a key permissions on BUCKET or BUCKET/PREFIX (and/or bucket creation).
    Allow(GrantArgs),
    /// Take permissions away (with no flag: all of them on that scope).
    Deny(GrantArgs),
    /// Refuse the key until enabled again.
    Disable {
        /// Access key id or name.
        key: String,
    },
    /// Accept a disabled key again.
    Enable {
        /// Access key id or name.
        key: String,
    },
    /// Set when the key stops working (never, 30d, a date or an RFC 3339 time).
    Expire {
        /// Access key id or name.
        key: String,
        /// never, 30d, 2027-01-31 or 2027-01-31T12:00:00Z.
        when: String,
    },
}

/// What `key allow` and `key deny` take.
#[derive(Debug, Clone, clap::Args)]
pub struct GrantArgs {
    /// Access key id or name.
    pub key: String,
    /// BUCKET or BUCKET/PREFIX.
    pub scope: Option<String>,
    /// Read objects and list them.
    #[arg(long)]
    pub read: bool,
    /// Write and delete objects.
    #[arg(long)]
    pub write: bool,
    /// Everything, the bucket's configuration included.
    #[arg(long)]
    pub owner: bool,
    /// Creating buckets.
    #[arg(long)]
    pub create_buckets: bool,
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
    if let KeyCommand::Allow(g) | KeyCommand::Deny(g) = &cmd {
        if g.scope.is_none() && !g.create_buckets {
            return Err("name a bucket (BUCKET or BUCKET/PREFIX) or --create-buckets".into());
        }
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
        KeyCommand::Info { key } => show(&engine.key_info(&key).map_err(err)?),
        KeyCommand::Delete { key } => {
            let k = engine.delete_key(&key).await.map_err(err)?;
            println!("Deleted key {} ({})", k.id, k.record.name);
        }
        KeyCommand::Allow(g) => {
            if g.scope.is_some() && !(g.read || g.write || g.owner) {
                return Err("say what to allow: --read, --write and/or --owner".into());
            }
            change_grants(engine, g, true).await?;
        }
        KeyCommand::Deny(g) => change_grants(engine, g, false).await?,
        KeyCommand::Disable { key } => show(
            &engine
                .change_key(&key, KeyChange::Disabled(true))
                .await
                .map_err(err)?,
        ),
        KeyCommand::Enable { key } => show(
            &engine
                .change_key(&key, KeyChange::Disabled(false))
                .await
                .map_err(err)?,
        ),
        KeyCommand::Expire { key, when } => {
            let t = parse_when(&when, now)?;
            let k = engine
                .change_key(&key, KeyChange::Expires(t))
                .await
                .map_err(err)?;
            show(&k);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `key allow` (`allow`) or `key deny`: bucket creation and the grant on the scope.
async fn change_grants(engine: &Engine, g: GrantArgs, allow: bool) -> Result<(), String> {
    let err = |e: engine::Error| e.to_string();
    if g.create_buckets {
        engine
            .change_key(&g.key, KeyChange::CreateBuckets(allow))
            .await
            .map_err(err)?;
    }
    if let Some(scope) = &g.scope {
        let grant = grant(scope, g.read, g.write, g.owner);
        let change = if allow {
            KeyChange::Allow(grant)
        } else {
            KeyChange::Deny(grant)
        };
        engine.change_key(&g.key, change).await.map_err(err)?;
    }
    show(&engine.key_info(&g.key).map_err(err)?);
    Ok(())
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

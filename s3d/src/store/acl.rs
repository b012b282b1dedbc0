//! ACLs over S3 (Get/PutBucketAcl, Get/PutObjectAcl, the `x-amz-acl` and `x-amz-grant-*`
//! headers of writes), PublicAccessBlock and OwnershipControls, onto the engine's access layer
//! (which keeps them and decides with them). Grantees are keys of the store by their access
//! key id (S3's canonical user id here) and the two groups; e-mail grantees are refused.

use engine::access::acl::{
    Acl, AclGrant, Grantee as G, Permission as P, PublicAccessBlock, ALL_USERS_URI,
    AUTHENTICATED_USERS_URI,
};

use super::*;

/// The canonical id (and display name) of a bucket's owner: its key, or the administrators.
pub(super) fn owner_of(id: Option<&str>) -> Owner {
    match id {
        Some(id) => Owner {
            display_name: Some(id.to_string()),
            id: Some(id.to_string()),
        },
        None => owner(),
    }
}

/// The owner of `bucket` as answers name it (ACLs, listings of versions and uploads).
pub(super) fn bucket_owner(s: &Store, bucket: &str) -> S3Result<Owner> {
    let (owner, _) = s.engine.bucket_acl(bucket).map_err(s3_err)?;
    Ok(owner_of(owner.as_deref()))
}

/// The initiator of an upload: the bucket's owner, as everything in it is.
pub(super) fn initiator_of(o: &Owner) -> Initiator {
    Initiator {
        display_name: o.display_name.clone(),
        id: o.id.clone(),
    }
}

/// Where ACLs are disabled (BucketOwnerEnforced), PutBucketAcl and PutObjectAcl fail unless
/// they only say the owner has full control.
fn refuse_where_disabled(s: &Store, bucket: &str, canned: Option<&str>) -> S3Result<()> {
    if canned != Some("bucket-owner-full-control")
        && s.engine.acls_disabled(bucket).map_err(s3_err)?
    {
        return Err(s3_err(engine::Error::AclNotSupported));
    }
    Ok(())
}

fn grantee_out(g: &G) -> Grantee {
    match g {
        G::AllUsers | G::AuthenticatedUsers => Grantee {
            type_: Type::from_static(Type::GROUP),
            uri: Some(
                match g {
                    G::AllUsers => ALL_USERS_URI,
                    _ => AUTHENTICATED_USERS_URI,
                }
                .to_string(),
            ),
            display_name: None,
            email_address: None,
            id: None,
        },
        G::Key(id) => Grantee {
            type_: Type::from_static(Type::CANONICAL_USER),
            id: Some(id.clone()),
            display_name: Some(id.clone()),
            email_address: None,
            uri: None,
        },
    }
}

/// The grants an ACL answer lists: the owner's full control, then the ACL's.
fn grants_out(owner: &Owner, acl: &Acl) -> Grants {
    let mut out = vec![Grant {
        grantee: Some(Grantee {
            type_: Type::from_static(Type::CANONICAL_USER),
            id: owner.id.clone(),
            display_name: owner.display_name.clone(),
            email_address: None,
            uri: None,
        }),
        permission: Some(Permission::from_static(Permission::FULL_CONTROL)),
    }];
    out.extend(acl.grants.iter().map(|g| Grant {
        grantee: Some(grantee_out(&g.grantee)),
        permission: Some(Permission::from(g.permission.name().to_string())),
    }));
    out
}

fn bad_grant(why: String) -> s3s::S3Error {
    s3_error!(InvalidArgument, "{why}")
}

/// A grantee as a client names it: a key by id, or a group by URI.
fn grantee_in(g: &Grantee, owner: &Owner) -> S3Result<Option<G>> {
    match g.type_.as_str() {
        Type::GROUP => match g.uri.as_deref() {
            Some(ALL_USERS_URI) => Ok(Some(G::AllUsers)),
            Some(AUTHENTICATED_USERS_URI) => Ok(Some(G::AuthenticatedUsers)),
            other => Err(bad_grant(format!("Invalid group uri: {other:?}"))),
        },
        Type::CANONICAL_USER => {
            let id = g.id.clone().unwrap_or_default();
            // The owner's own full control is implied: no grant needed.
            Ok((owner.id.as_deref() != Some(id.as_str())).then_some(G::Key(id)))
        }
        Type::AMAZON_CUSTOMER_BY_EMAIL => Err(s3_error!(
            UnresolvableGrantByEmailAddress,
            "The e-mail address you provided does not match any account on record."
        )),
        other => Err(bad_grant(format!("Invalid grantee type: {other}"))),
    }
}

/// One `x-amz-grant-*` header: `id="…"`, `uri="…"` or `emailAddress="…"`, comma-separated.
fn header_grants(value: &str, permission: P, owner: &Owner) -> S3Result<Vec<AclGrant>> {
    let mut out = Vec::new();
    for part in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (kind, v) = part
            .split_once('=')
            .ok_or_else(|| bad_grant(format!("Invalid grant header value: {part}")))?;
        let v = v.trim().trim_matches('"').to_string();
        let g = match kind.trim() {
            "id" => Grantee {
                type_: Type::from_static(Type::CANONICAL_USER),
                id: Some(v),
                display_name: None,
                email_address: None,
                uri: None,
            },
            "uri" => Grantee {
                type_: Type::from_static(Type::GROUP),
                uri: Some(v),
                id: None,
                display_name: None,
                email_address: None,
            },
            "emailAddress" => Grantee {
                type_: Type::from_static(Type::AMAZON_CUSTOMER_BY_EMAIL),
                email_address: Some(v),
                id: None,
                display_name: None,
                uri: None,
            },
            other => return Err(bad_grant(format!("Invalid grantee kind: {other}"))),
        };
        if let Some(grantee) = grantee_in(&g, owner)? {
            out.push(AclGrant {
                grantee,
                permission,
            });
        }
    }
    Ok(out)
}

/// What a request asks for as an ACL: a canned one, the `x-amz-grant-*` headers, or a grant
/// list (only one of them); `None`: it names none.
pub(super) struct AclRequest<'a> {
    pub canned: Option<&'a str>,
    pub headers: [(Option<&'a String>, P); 5],
    pub policy: Option<&'a AccessControlPolicy>,
}

impl AclRequest<'_> {
    pub(super) fn resolve(&self, owner: &Owner) -> S3Result<Option<Acl>> {
        let has_headers = self.headers.iter().any(|(h, _)| h.is_some());
        let named = [self.canned.is_some(), has_headers, self.policy.is_some()]
            .iter()
            .filter(|b| **b)
            .count();
        if named > 1 {
            return Err(s3_error!(
                InvalidRequest,
                "Specify a canned ACL, grant headers or an access control policy, not several"
            ));
        }
        if let Some(c) = self.canned {
            return Acl::canned(c)
                .map(Some)
                .ok_or_else(|| s3_error!(InvalidArgument, "Invalid canned ACL: {c}"));
        }
        if has_headers {
            let mut grants = Vec::new();
            for (h, p) in &self.headers {
                if let Some(v) = h {
                    grants.extend(header_grants(v, *p, owner)?);
                }
            }
            return Ok(Some(Acl { grants }));
        }
        if let Some(policy) = self.policy {
            let mut grants = Vec::new();
            for g in policy.grants.iter().flatten() {
                let permission = g
                    .permission
                    .as_ref()
                    .and_then(|p| P::parse(p.as_str()))
                    .ok_or_else(|| bad_grant("Invalid permission in a grant".into()))?;
                let grantee = g
                    .grantee
                    .as_ref()
                    .ok_or_else(|| s3_error!(MalformedACLError, "A grant has no grantee"))?;
                if let Some(grantee) = grantee_in(grantee, owner)? {
                    grants.push(AclGrant {
                        grantee,
                        permission,
                    });
                }
            }
            return Ok(Some(Acl { grants }));
        }
        Ok(None)
    }
}

/// The `AclRequest` of an input with S3's ACL fields.
macro_rules! acl_request {
    ($i:expr, $policy:expr) => {
        super::acl::AclRequest {
            canned: $i.acl.as_ref().map(|a| a.as_str()),
            headers: [
                (
                    $i.grant_read.as_ref(),
                    engine::access::acl::Permission::Read,
                ),
                (None, engine::access::acl::Permission::Write),
                (
                    $i.grant_read_acp.as_ref(),
                    engine::access::acl::Permission::ReadAcp,
                ),
                (
                    $i.grant_write_acp.as_ref(),
                    engine::access::acl::Permission::WriteAcp,
                ),
                (
                    $i.grant_full_control.as_ref(),
                    engine::access::acl::Permission::FullControl,
                ),
            ],
            policy: $policy,
        }
    };
}
pub(super) use acl_request;

pub(super) async fn get_bucket_acl(
    s: &Store,
    i: GetBucketAclInput,
) -> S3Result<GetBucketAclOutput> {
    let (owner, acl) = s.engine.bucket_acl(&i.bucket).map_err(s3_err)?;
    let owner = owner_of(owner.as_deref());
    Ok(GetBucketAclOutput {
        grants: Some(grants_out(&owner, &acl)),
        owner: Some(owner),
    })
}

pub(super) async fn put_bucket_acl(
    s: &Store,
    i: PutBucketAclInput,
) -> S3Result<PutBucketAclOutput> {
    refuse_where_disabled(s, &i.bucket, i.acl.as_ref().map(|a| a.as_str()))?;
    let (owner, _) = s.engine.bucket_acl(&i.bucket).map_err(s3_err)?;
    let owner = owner_of(owner.as_deref());
    let mut req = acl_request!(i, i.access_control_policy.as_ref());
    req.headers[1].0 = i.grant_write.as_ref();
    let acl = req.resolve(&owner)?.ok_or_else(|| {
        s3_error!(
            MissingSecurityHeader,
            "Your request was missing a required header: an ACL, grant headers or a body"
        )
    })?;
    s.engine
        .set_bucket_acl(&i.bucket, acl)
        .await
        .map_err(s3_err)?;
    Ok(PutBucketAclOutput {})
}

pub(super) async fn get_object_acl(
    s: &Store,
    i: GetObjectAclInput,
) -> S3Result<GetObjectAclOutput> {
    let sel = version_sel(&i.version_id)?;
    let (owner, acl) = s
        .engine
        .object_acl(&i.bucket, &i.key, sel)
        .map_err(s3_err)?;
    let owner = owner_of(owner.as_deref());
    Ok(GetObjectAclOutput {
        grants: Some(grants_out(&owner, &acl)),
        owner: Some(owner),
        ..Default::default()
    })
}

pub(super) async fn put_object_acl(
    s: &Store,
    i: PutObjectAclInput,
) -> S3Result<PutObjectAclOutput> {
    let sel = version_sel(&i.version_id)?;
    refuse_where_disabled(s, &i.bucket, i.acl.as_ref().map(|a| a.as_str()))?;
    let (owner, _) = s.engine.bucket_acl(&i.bucket).map_err(s3_err)?;
    let owner = owner_of(owner.as_deref());
    let acl = acl_request!(i, i.access_control_policy.as_ref())
        .resolve(&owner)?
        .ok_or_else(|| {
            s3_error!(
                MissingSecurityHeader,
                "Your request was missing a required header: an ACL, grant headers or a body"
            )
        })?;
    s.engine
        .set_object_acl(&i.bucket, &i.key, sel, acl)
        .await
        .map_err(s3_err)?;
    Ok(PutObjectAclOutput::default())
}

pub(super) async fn get_public_access_block(
    s: &Store,
    i: GetPublicAccessBlockInput,
) -> S3Result<GetPublicAccessBlockOutput> {
    let Some(p) = s.engine.public_access_block(&i.bucket).map_err(s3_err)? else {
        let mut e = s3s::S3Error::with_message(
            s3s::S3ErrorCode::Custom("NoSuchPublicAccessBlockConfiguration".into()),
            "The public access block configuration was not found",
        );
        e.set_status_code(http::StatusCode::NOT_FOUND);
        return Err(e);
    };
    Ok(GetPublicAccessBlockOutput {
        public_access_block_configuration: Some(PublicAccessBlockConfiguration {
            block_public_acls: Some(p.block_public_acls),
            ignore_public_acls: Some(p.ignore_public_acls),
            block_public_policy: Some(p.block_public_policy),
            restrict_public_buckets: Some(p.restrict_public_buckets),
        }),
    })
}

pub(super) async fn put_public_access_block(
    s: &Store,
    i: PutPublicAccessBlockInput,
) -> S3Result<PutPublicAccessBlockOutput> {
    let c = i.public_access_block_configuration;
    let p = PublicAccessBlock {
        block_public_acls: c.block_public_acls.unwrap_or(false),
        ignore_public_acls: c.ignore_public_acls.unwrap_or(false),
        block_public_policy: c.block_public_policy.unwrap_or(false),
        restrict_public_buckets: c.restrict_public_buckets.unwrap_or(false),
    };
    s.engine
        .set_public_access_block(&i.bucket, Some(p))
        .await
        .map_err(s3_err)?;
    Ok(PutPublicAccessBlockOutput {})
}

pub(super) async fn delete_public_access_block(
    s: &Store,
    i: DeletePublicAccessBlockInput,
) -> S3Result<DeletePublicAccessBlockOutput> {
    s.engine
        .set_public_access_block(&i.bucket, None)
        .await
        .map_err(s3_err)?;
    Ok(DeletePublicAccessBlockOutput {})
}

pub(super) async fn get_bucket_ownership_controls(
    s: &Store,
    i: GetBucketOwnershipControlsInput,
) -> S3Result<GetBucketOwnershipControlsOutput> {
    let Some(o) = s.engine.ownership(&i.bucket).map_err(s3_err)? else {
        return Err(s3_error!(
            OwnershipControlsNotFoundError,
            "The bucket ownership controls were not found"
        ));
    };
    Ok(GetBucketOwnershipControlsOutput {
        ownership_controls: Some(OwnershipControls {
            rules: vec![OwnershipControlsRule {
                object_ownership: ObjectOwnership::from(o),
            }],
        }),
    })
}

pub(super) async fn put_bucket_ownership_controls(
    s: &Store,
    i: PutBucketOwnershipControlsInput,
) -> S3Result<PutBucketOwnershipControlsOutput> {
    let rules = i.ownership_controls.rules;
    let [rule] = rules.as_slice() else {
        return Err(s3_error!(
            MalformedXML,
            "OwnershipControls must hold exactly one rule"
        ));
    };
    s.engine
        .set_ownership(&i.bucket, Some(rule.object_ownership.as_str().to_string()))
        .await
        .map_err(s3_err)?;
    Ok(PutBucketOwnershipControlsOutput {})
}

pub(super) async fn delete_bucket_ownership_controls(
    s: &Store,
    i: DeleteBucketOwnershipControlsInput,
) -> S3Result<DeleteBucketOwnershipControlsOutput> {
    s.engine
        .set_ownership(&i.bucket, None)
        .await
        .map_err(s3_err)?;
    Ok(DeleteBucketOwnershipControlsOutput {})
}

/// The ACL a write asks for (`x-amz-acl` or `x-amz-grant-*`), checked against the bucket's
/// PublicAccessBlock; `None` for a private one (nothing to keep).
pub(super) async fn acl_for_write(
    s: &Store,
    bucket: &str,
    req: AclRequest<'_>,
) -> S3Result<Option<Acl>> {
    let has_headers = req.headers.iter().any(|(h, _)| h.is_some());
    if req.canned.is_none() && !has_headers {
        return Ok(None);
    }
    // Where ACLs are disabled, a write may only say the owner has full control.
    let owner_only = req.canned == Some("bucket-owner-full-control") && !has_headers;
    if !owner_only && s.engine.acls_disabled(bucket).map_err(s3_err)? {
        return Err(s3_err(engine::Error::AclNotSupported));
    }
    let (owner, _) = s.engine.bucket_acl(bucket).map_err(s3_err)?;
    let Some(acl) = req
        .resolve(&owner_of(owner.as_deref()))?
        .filter(|a| !a.grants.is_empty())
    else {
        return Ok(None);
    };
    s.engine.check_object_acl(bucket, &acl).map_err(s3_err)?;
    s.engine.note_object_acls(bucket).await.map_err(s3_err)?;
    Ok(Some(acl))
}

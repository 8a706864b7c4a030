//! Organisations, users, API tokens, sessions and signing keys.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use certlab_reports::{key_id, VerifyingKey};
use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::rows::{db_err, get, get_ts, new_id, ts, DbError};
use super::PortalStore;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Submits bundles for their organisation and follows them.
    Vendor,
    /// Reviews every organisation's submissions.
    Reviewer,
    /// A reviewer who also administers the portal.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Vendor => "vendor",
            Role::Reviewer => "reviewer",
            Role::Admin => "admin",
        }
    }

    /// Sees and reviews every organisation's submissions.
    pub fn reviews(self) -> bool {
        matches!(self, Role::Reviewer | Role::Admin)
    }

    /// Operates the lab: sees its dashboard and queues jobs. Vendors do not
    /// (the lab's machines and jobs concern other organisations' hardware).
    pub fn operates_lab(self) -> bool {
        matches!(self, Role::Reviewer | Role::Admin)
    }
}

impl std::str::FromStr for Role {
    type Err = DbError;

    fn from_str(s: &str) -> Result<Role, DbError> {
        match s {
            "vendor" => Ok(Role::Vendor),
            "reviewer" => Ok(Role::Reviewer),
            "admin" => Ok(Role::Admin),
            _ => Err(DbError::Invalid {
                what: "role".into(),
                detail: format!("{s:?} is not one of vendor, reviewer, admin"),
            }),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An organisation (a vendor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub created: OffsetDateTime,
}

/// A user with their organisation's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub org_id: String,
    pub org_name: String,
    pub role: Role,
    /// The argon2 PHC string; `None` for a user without browser login.
    pub password_hash: Option<String>,
}

const SELECT_USER: &str = "SELECT u.id, u.email, u.org_id, o.name AS org_name, u.role, \
     u.password_hash FROM portal_users u JOIN portal_orgs o ON o.id = u.org_id ";

fn user_from_row(row: &AnyRow) -> Result<User, DbError> {
    let id: String = get(row, "user", "id")?;
    let what = format!("user {id}");
    Ok(User {
        email: get(row, &what, "email")?,
        org_id: get(row, &what, "org_id")?,
        org_name: get(row, &what, "org_name")?,
        role: get::<String>(row, &what, "role")?.parse()?,
        password_hash: get(row, &what, "password_hash")?,
        id,
    })
}

fn check_name(what: &str, name: &str, max: usize) -> Result<(), DbError> {
    let bad = |detail: &str| {
        Err(DbError::Invalid {
            what: what.to_string(),
            detail: format!("{name:?}: {detail}"),
        })
    };
    if name.trim().is_empty() || name.trim() != name {
        return bad("empty, or with leading or trailing spaces");
    }
    if name.chars().count() > max {
        return bad(&format!("longer than {max} characters"));
    }
    if name.chars().any(char::is_control) {
        return bad("holds control characters");
    }
    Ok(())
}

impl PortalStore {
    /// A new organisation; its name is unique.
    pub async fn create_org(&self, name: &str, now: OffsetDateTime) -> Result<Org, DbError> {
        check_name("organisation name", name, 200)?;
        let org = Org {
            id: new_id(),
            name: name.to_string(),
            created: now,
        };
        sqlx::query("INSERT INTO portal_orgs (id, name, created) VALUES ($1, $2, $3)")
            .bind(org.id.as_str())
            .bind(name)
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(db_err(format!("organisation {name:?}")))?;
        Ok(org)
    }

    pub async fn org_by_name(&self, name: &str) -> Result<Option<Org>, DbError> {
        let row = sqlx::query("SELECT id, name, created FROM portal_orgs WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err(format!("find organisation {name:?}")))?;
        row.map(|row| {
            let what = format!("organisation {name:?}");
            Ok(Org {
                id: get(&row, &what, "id")?,
                name: get(&row, &what, "name")?,
                created: get_ts(&row, &what, "created")?,
            })
        })
        .transpose()
    }

    async fn org_named(&self, name: &str) -> Result<Org, DbError> {
        self.org_by_name(name)
            .await?
            .ok_or_else(|| DbError::NotFound {
                what: format!("organisation {name:?}"),
            })
    }

    /// A new user of organisation `org` (by name); emails are unique.
    pub async fn create_user(
        &self,
        email: &str,
        org: &str,
        role: Role,
        password_hash: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<User, DbError> {
        check_name("email", email, 254)?;
        if !email.contains('@') {
            return Err(DbError::Invalid {
                what: "email".into(),
                detail: format!("{email:?} has no @"),
            });
        }
        let org = self.org_named(org).await?;
        let id = new_id();
        sqlx::query(
            "INSERT INTO portal_users (id, email, org_id, role, password_hash, created) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.as_str())
        .bind(email)
        .bind(org.id.as_str())
        .bind(role.as_str())
        .bind(password_hash)
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(db_err(format!("user {email:?}")))?;
        Ok(User {
            id,
            email: email.to_string(),
            org_id: org.id,
            org_name: org.name,
            role,
            password_hash: password_hash.map(str::to_string),
        })
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>, DbError> {
        let sql = format!("{SELECT_USER} WHERE u.email = $1");
        let row = sqlx::query(&sql)
            .bind(email)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err(format!("find user {email:?}")))?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Records an API token of a user by its sha256.
    pub async fn add_token(
        &self,
        user_id: &str,
        token_sha256: &str,
        now: OffsetDateTime,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO portal_tokens (token_sha256, user_id, created) VALUES ($1, $2, $3)",
        )
        .bind(token_sha256)
        .bind(user_id)
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(db_err("API token"))?;
        Ok(())
    }

    /// The user holding the token whose sha256 this is.
    pub async fn user_by_token(&self, token_sha256: &str) -> Result<Option<User>, DbError> {
        let sql = format!(
            "{SELECT_USER} JOIN portal_tokens t ON t.user_id = u.id WHERE t.token_sha256 = $1"
        );
        let row = sqlx::query(&sql)
            .bind(token_sha256)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("find API token"))?;
        row.as_ref().map(user_from_row).transpose()
    }

    /// Records a browser session by the sha256 of its cookie, with its CSRF
    /// token, and forgets the sessions expired at `now`.
    pub async fn create_session(
        &self,
        session_sha256: &str,
        user_id: &str,
        csrf: &str,
        now: OffsetDateTime,
        expires: OffsetDateTime,
    ) -> Result<(), DbError> {
        // sessions expired by now go as new ones come
        sqlx::query("DELETE FROM portal_sessions WHERE expires <= $1")
            .bind(ts(now))
            .execute(&self.pool)
            .await
            .map_err(db_err("delete expired sessions"))?;
        sqlx::query(
            "INSERT INTO portal_sessions (session_sha256, user_id, csrf, created, expires) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session_sha256)
        .bind(user_id)
        .bind(csrf)
        .bind(ts(now))
        .bind(ts(expires))
        .execute(&self.pool)
        .await
        .map_err(db_err("session"))?;
        Ok(())
    }

    /// The user and CSRF token of a session that has not expired at `now`.
    pub async fn session(
        &self,
        session_sha256: &str,
        now: OffsetDateTime,
    ) -> Result<Option<(User, String)>, DbError> {
        let sql = "SELECT u.id, u.email, u.org_id, o.name AS org_name, u.role, u.password_hash, \
             s.csrf FROM portal_sessions s JOIN portal_users u ON u.id = s.user_id \
             JOIN portal_orgs o ON o.id = u.org_id WHERE s.session_sha256 = $1 AND s.expires > $2";
        let row = sqlx::query(sql)
            .bind(session_sha256)
            .bind(ts(now))
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err("find session"))?;
        match row {
            None => Ok(None),
            Some(row) => {
                let user = user_from_row(&row)?;
                let csrf = get(&row, "session", "csrf")?;
                Ok(Some((user, csrf)))
            }
        }
    }

    pub async fn delete_session(&self, session_sha256: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM portal_sessions WHERE session_sha256 = $1")
            .bind(session_sha256)
            .execute(&self.pool)
            .await
            .map_err(db_err("delete session"))?;
        Ok(())
    }

    /// Registers an ed25519 public key for organisation `org` (by name) and
    /// returns its key id (as bundles name it). A key belongs to one organisation.
    pub async fn add_key(
        &self,
        org: &str,
        key: &VerifyingKey,
        now: OffsetDateTime,
    ) -> Result<String, DbError> {
        let org = self.org_named(org).await?;
        let id = key_id(key);
        sqlx::query(
            "INSERT INTO portal_keys (key_id, org_id, public_key, created) VALUES ($1, $2, $3, $4)",
        )
        .bind(id.as_str())
        .bind(org.id.as_str())
        .bind(BASE64.encode(key.as_bytes()))
        .bind(ts(now))
        .execute(&self.pool)
        .await
        .map_err(db_err(format!("signing key {id}")))?;
        Ok(id)
    }

    /// The signing keys of an organisation.
    pub async fn org_keys(&self, org_id: &str) -> Result<Vec<VerifyingKey>, DbError> {
        let rows = sqlx::query("SELECT key_id, public_key FROM portal_keys WHERE org_id = $1")
            .bind(org_id)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err("list signing keys"))?;
        rows.iter()
            .map(|row| {
                let id: String = get(row, "signing key", "key_id")?;
                let what = format!("signing key {id}");
                let b64: String = get(row, &what, "public_key")?;
                let corrupt = |detail: &str| DbError::Corrupt {
                    what: what.clone(),
                    detail: detail.to_string(),
                };
                let raw: [u8; 32] = BASE64
                    .decode(&b64)
                    .ok()
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| corrupt("not base64 of 32 bytes"))?;
                VerifyingKey::from_bytes(&raw).map_err(|_| corrupt("not an ed25519 key"))
            })
            .collect()
    }
}

//! Who is asking: API tokens (bearer), browser sessions (cookie), passwords
//! (argon2) and CSRF tokens. Authentication lives in extractors
//! ([`ApiUser`], [`Viewer`]); handlers only decide what a role may do.
//!
//! Tokens and session cookies are 256 random bits; the store keeps only
//! their sha256, so a copy of the database lets no one in.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::request::Parts;
use axum::http::HeaderMap;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::error::WebError;
use crate::store::User;
use crate::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "certlab_session";
/// The cookie that carries the login form's CSRF token before there is a session.
pub const LOGIN_CSRF_COOKIE: &str = "certlab_login_csrf";
/// The prefix of API tokens, so that a leaked one is recognisable.
pub const TOKEN_PREFIX: &str = "clp_";

/// 256 random bits, hex, after `prefix`.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// A new API token: `(token, its sha256)`. The token is shown once.
pub fn new_token() -> (String, String) {
    let token = new_secret(TOKEN_PREFIX);
    let digest = sha256_hex(&token);
    (token, digest)
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// The argon2id PHC string of a password, with a random salt.
pub fn hash_password(password: &str) -> Result<String, WebError> {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(WebError::internal)?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(WebError::internal)
}

/// Whether `password` matches the PHC string `hash`.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// An argon2id hash no password matches (of 256 random bits, made once),
/// to verify against when a login names no user with a password.
pub fn unusable_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password(&new_secret("")).unwrap_or_default())
}

/// Equal strings, compared in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, Path=/, Secure when the
/// portal's public URL is https; `max_age` 0 deletes it.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> String {
    let secure = if state.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}")
}

/// The caller of an API route, by its `Authorization: Bearer` token.
#[derive(Debug, Clone)]
pub struct ApiUser(pub User);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| WebError::unauthorized("no Authorization: Bearer token"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| WebError::unauthorized("Authorization is not a Bearer token"))?;
        let user = state.store().user_by_token(&sha256_hex(token)).await?;
        user.map(ApiUser)
            .ok_or_else(|| WebError::unauthorized("unknown API token"))
    }
}

/// Who looks at a page: the session's user and its CSRF token, if logged in.
#[derive(Debug, Clone, Default)]
pub struct Viewer {
    pub user: Option<User>,
    pub csrf: Option<String>,
    /// sha256 of the session cookie.
    pub session: Option<String>,
}

impl Viewer {
    /// The logged-in user, or 401 (a page with a link to log in).
    pub fn require(&self) -> Result<&User, WebError> {
        self.user
            .as_ref()
            .ok_or_else(|| WebError::unauthorized("log in to see this page"))
    }

    /// Checks a form's CSRF token against the session's.
    pub fn check_csrf(&self, sent: &str) -> Result<(), WebError> {
        match &self.csrf {
            Some(csrf) if same_secret(csrf, sent) => Ok(()),
            _ => Err(WebError::forbidden(
                "the form's CSRF token does not match this session: reload the page",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let Some(value) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Ok(Viewer::default());
        };
        let session = sha256_hex(value);
        let found = state.store().session(&session, state.now()).await?;
        Ok(match found {
            Some((user, csrf)) => Viewer {
                user: Some(user),
                csrf: Some(csrf),
                session: Some(session),
            },
            None => Viewer::default(),
        })
    }
}

/// A lab operator ([`crate::Role::operates_lab`]) reading the lab's state:
/// by bearer token, or by session cookie — a browser's `EventSource` cannot
/// send a token, and reads change nothing, so they need no CSRF token.
/// Anonymous callers are 401, other roles 403.
#[derive(Debug, Clone)]
pub struct LabReader(pub User);

impl FromRequestParts<AppState> for LabReader {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let user = if parts.headers.contains_key(AUTHORIZATION) {
            ApiUser::from_request_parts(parts, state).await?.0
        } else {
            Viewer::from_request_parts(parts, state)
                .await?
                .user
                .ok_or_else(|| {
                    WebError::unauthorized("no Authorization: Bearer token or session")
                })?
        };
        if !user.role.operates_lab() {
            return Err(lab_forbidden());
        }
        Ok(LabReader(user))
    }
}

/// What a user who does not operate the lab is told.
pub fn lab_forbidden() -> WebError {
    WebError::forbidden("the lab is for its operators (reviewers and admins)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_salt_and_verify() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("correct hors", &a));
        assert!(!verify_password("x", "not a phc string"));
    }

    #[test]
    fn tokens_are_256_bits_and_stored_as_their_digest() {
        let (t, d) = new_token();
        assert_eq!(t.len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(d, sha256_hex(&t));
        assert_ne!(new_token().0, t);
        assert!(same_secret(&t, &t.clone()));
        assert!(!same_secret(&t, &new_token().0));
        assert!(!same_secret("a", "ab"));
    }
}

//! Bearer tokens shared by both APIs: the command API issues them at login, both verify them.
//! HS256 with a shared secret; the claims name the account and its roles.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chaos_domain::AccountId;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Token issuer and audience. Changing them invalidates every issued token.
const ISSUER: &str = "chaos-world";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Player,
    /// Game systems and staff: may grant experience, inspect any aggregate.
    GameMaster,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub roles: Vec<Role>,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
}

impl Claims {
    pub fn account(&self) -> Result<AccountId, AuthError> {
        AccountId::parse(&self.sub).map_err(|_| AuthError::Invalid)
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    Missing,
    #[error("invalid bearer token")]
    Invalid,
    #[error("expired bearer token")]
    Expired,
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        crate::http::Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized")
            .detail(self.to_string())
            .into_response()
    }
}

/// The authenticated caller of a request: a valid `Authorization: Bearer <JWT>`, else 401
/// problem+json. Works in any router whose state yields the [`JwtKeys`].
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
    pub account: AccountId,
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.claims.has(role)
    }
}

impl<S> FromRequestParts<S> for Caller
where
    JwtKeys: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(AuthError::Missing)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or(AuthError::Invalid)?;
        let claims = JwtKeys::from_ref(state).verify(token.trim())?;
        let account = claims.account()?;
        Ok(Self { claims, account })
    }
}

/// The optional caller: `None` without an `Authorization` header; a header that does not verify
/// is still 401 (a client that sends a token expects it to count).
#[derive(Debug, Clone)]
pub struct MaybeCaller(pub Option<Caller>);

impl<S> FromRequestParts<S> for MaybeCaller
where
    JwtKeys: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AuthError> {
        if !parts
            .headers
            .contains_key(axum::http::header::AUTHORIZATION)
        {
            return Ok(Self(None));
        }
        Caller::from_request_parts(parts, state)
            .await
            .map(|c| Self(Some(c)))
    }
}

/// The secret every development configuration ships with. A service outside development mode
/// refuses to start with it.
pub const DEVELOPMENT_SECRET: &str = "chaos-world-local-development-secret";

/// HS256 keys and the validation every token gets. Cheap to clone (one reference count): the
/// extractors clone it per request.
#[derive(Clone)]
pub struct JwtKeys {
    inner: std::sync::Arc<Keys>,
}

struct Keys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Built once: `Validation::new` and `set_issuer` allocate.
    validation: Validation,
    ttl_secs: i64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("ttl_secs", &self.inner.ttl_secs)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// HS256 with a shared secret (both APIs and any gateway verify with it).
    pub fn new(secret: &SecretString, ttl_secs: i64) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.leeway = 5;
        Self {
            inner: std::sync::Arc::new(Keys {
                encoding: EncodingKey::from_secret(bytes),
                decoding: DecodingKey::from_secret(bytes),
                validation,
                ttl_secs,
            }),
        }
    }

    pub fn ttl_secs(&self) -> i64 {
        self.inner.ttl_secs
    }

    pub fn issue(&self, account: AccountId, roles: Vec<Role>, now: i64) -> anyhow::Result<String> {
        let claims = Claims {
            sub: account.to_string(),
            roles,
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + self.inner.ttl_secs,
        };
        Ok(encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.inner.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        decode::<Claims>(token, &self.inner.decoding, &self.inner.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => AuthError::Expired,
                _ => AuthError::Invalid,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(secret: &str) -> JwtKeys {
        JwtKeys::new(&SecretString::from(secret.to_owned()), 60)
    }

    #[test]
    fn tokens_verify_only_with_the_right_key_and_in_time() {
        let account = AccountId::from_uuid(uuid::Uuid::from_u128(7));
        let now = chrono::Utc::now().timestamp();
        let token = keys("a").issue(account, vec![Role::Player], now).unwrap();
        let claims = keys("a").verify(&token).unwrap();
        assert_eq!(claims.account().unwrap(), account);
        assert!(matches!(keys("b").verify(&token), Err(AuthError::Invalid)));
        let old = keys("a")
            .issue(account, vec![Role::Player], now - 3600)
            .unwrap();
        assert!(matches!(keys("a").verify(&old), Err(AuthError::Expired)));
        assert!(matches!(
            keys("a").verify("not.a.jwt"),
            Err(AuthError::Invalid)
        ));
    }
}

//! Who is asking: `who` finds the member of staff behind a request (a signed-in account's
//! session, or the staff-key cookie where the config turns that on), which the route's gate
//! (`http::routes`) calls; the extractors every staff handler takes ([`Staff`] for pages,
//! [`StaffApi`] for the JSON API) read whom the gate let through. Also the cookies, the CSRF
//! check and the audit log's actor. Signing in and out is the `sign_in` feature's; who may do
//! what is `access`'s.

use crate::access::{self, Permission};
use crate::auth::{self, Role};
use crate::http::error::{ApiError, PageError};
use crate::http::layout::Viewer;
use crate::http::AppState;
use crate::secrets::{Secret, SecretHash};
use crate::store::StoreError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use chrono::Utc;
use subtle::ConstantTimeEq;

/// The break-glass cookie: the staff key itself.
pub const COOKIE_NAME: &str = "slate_staff";
/// A signed-in account's session id.
pub const SESSION_COOKIE: &str = "slate_session";
/// The sign-in form's CSRF token, before there is a session.
pub const LOGIN_COOKIE: &str = "slate_login";
/// The audit log's name for whoever used the staff key.
pub const STAFF_KEY_ACTOR: &str = "staff-key";

/// Who is asking: a signed-in account or the staff key. Every staff route takes one.
#[derive(Debug, Clone)]
pub struct Staff {
    /// The username, or [`STAFF_KEY_ACTOR`].
    pub actor: String,
    pub role: Role,
    pub csrf: String,
    pub(crate) session: Option<SecretHash>,
    /// Site block requests waiting, for the navigation of those who decide them (`None` for
    /// the rest: they are not counted).
    pub pending_block_requests: Option<u32>,
}

impl Staff {
    /// Whether this member of staff's role may (for what a page shows beyond its route's gate).
    pub fn may(&self, permission: Permission) -> bool {
        access::may(self.role, permission)
    }

    /// Compares a form's token with this session's, in constant time.
    pub fn check_csrf(&self, token: &str) -> Result<(), PageError> {
        if bool::from(self.csrf.as_bytes().ct_eq(token.as_bytes())) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    pub fn viewer(&self) -> Viewer {
        Viewer {
            name: self.actor.clone(),
            role: self.role,
            csrf: self.csrf.clone(),
            pending_block_requests: self.pending_block_requests,
        }
    }

    /// Whether this member of staff is still signed in, keeping the session alive as a request
    /// would: for a page that stays open without requests (the live incident list). The staff
    /// key stays signed in while the server runs.
    pub async fn still_signed_in(&self, state: &AppState) -> Result<bool, StoreError> {
        let Some(id) = self.session else { return Ok(true) };
        let now = Utc::now();
        state.store.run(move |store| Ok(live_session(store, &id, now)?.is_some())).await
    }

    /// Appends to the audit log.
    pub async fn audit(
        &self,
        state: &AppState,
        action: &str,
        record: Option<String>,
    ) -> Result<(), StoreError> {
        let actor = self.actor.clone();
        let action = action.to_owned();
        state
            .store
            .run(move |store| store.audit(Utc::now(), &actor, &action, record.as_deref(), None))
            .await
    }
}

/// The break-glass principal's CSRF token: derived from the key, so it needs no storage.
fn staff_key_csrf(key: &Secret) -> String {
    let hash = SecretHash::of(&format!("slate-csrf:{}", key.expose()));
    hex::encode(hash.as_bytes())
}

/// The session with this id if it is still live, touched as used now; an expired one is
/// deleted.
fn live_session(
    store: &crate::store::Store,
    id: &SecretHash,
    now: chrono::DateTime<Utc>,
) -> Result<Option<crate::store::StaffSession>, StoreError> {
    let Some(session) = store.session(id)? else { return Ok(None) };
    if !auth::session_live(session.created_at, session.last_seen_at, now) {
        store.delete_session(id)?;
        return Ok(None);
    }
    store.touch_session(id, now)?;
    Ok(Some(session))
}

pub(crate) enum Who {
    Nobody,
    MustChangePassword,
    Staff(Staff),
}

/// Who is asking, from the session cookie (or the staff-key cookie where that is on).
pub(crate) async fn who(parts: &Parts, state: &AppState) -> Result<Who, StoreError> {
    if let Some(id) = request_cookie(&parts.headers, SESSION_COOKIE, state.secure_cookies) {
        let id = SecretHash::of(id);
        let now = Utc::now();
        let session = state
            .store
            .run(move |store| {
                let Some(session) = live_session(store, &id, now)? else { return Ok(None) };
                let pending = match access::may(session.role, Permission::HandleBlockRequests) {
                    true => Some(store.pending_block_request_count()?),
                    false => None,
                };
                Ok(Some((session, id, pending)))
            })
            .await?;
        if let Some((session, id, pending_block_requests)) = session {
            let path = parts.uri.path();
            if session.must_change_password && path != "/staff/password" && path != "/staff/logout"
            {
                return Ok(Who::MustChangePassword);
            }
            return Ok(Who::Staff(Staff {
                actor: session.username,
                role: session.role,
                csrf: session.csrf_token,
                session: Some(id),
                pending_block_requests,
            }));
        }
    }
    let key_ok = state.config.staff_key_login
        && request_cookie(&parts.headers, COOKIE_NAME, state.secure_cookies)
            .is_some_and(|key| state.staff_key.matches(key));
    if key_ok {
        let pending = state.store.run(|store| store.pending_block_request_count()).await?;
        return Ok(Who::Staff(Staff {
            actor: STAFF_KEY_ACTOR.into(),
            role: Role::Dsl,
            csrf: staff_key_csrf(&state.staff_key),
            session: None,
            pending_block_requests: Some(pending),
        }));
    }
    Ok(Who::Nobody)
}

/// The member of staff the route's gate let through (`http::routes`); a route without a staff
/// gate has none.
impl FromRequestParts<AppState> for Staff {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Staff>().cloned().ok_or(PageError::StaffOnly)
    }
}

/// [`Staff`] for the JSON API: refusals are [`ApiError`]s.
pub struct StaffApi(pub Staff);

impl FromRequestParts<AppState> for StaffApi {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<Staff>().cloned().map(StaffApi).ok_or(ApiError::StaffOnly)
    }
}

/// The value of cookie `name` from any `Cookie` header.
pub fn cookie_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find_map(|(key, value)| (key == name).then_some(value))
}

/// The name a cookie goes by. Over HTTPS it carries the `__Host-` prefix: browsers then take
/// it only with `Secure`, `Path=/` and no `Domain`, so another host on the school's domain (or a
/// plain-HTTP page on the same name) cannot plant or overwrite a session. Plain HTTP, which is
/// loopback only, cannot use the prefix.
pub fn cookie_name(name: &str, secure: bool) -> std::borrow::Cow<'_, str> {
    if secure {
        format!("__Host-{name}").into()
    } else {
        name.into()
    }
}

/// The value of the server's cookie `name` in a request (by [`cookie_name`]).
pub fn request_cookie<'h>(headers: &'h HeaderMap, name: &str, secure: bool) -> Option<&'h str> {
    cookie_value(headers, &cookie_name(name, secure))
}

/// A `Set-Cookie` value that lives for this browser session, unreadable by script, never sent
/// by another site's request, and only over HTTPS when the server serves HTTPS.
pub fn cookie(name: &str, value: &str, secure: bool) -> String {
    let name = cookie_name(name, secure);
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/{secure}")
}

/// A `Set-Cookie` value that removes the cookie.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    format!("{}; Max-Age=0", cookie(name, "", secure))
}

/// The `Set-Cookie` value that signs staff in with the staff key.
pub fn staff_cookie(key: &str, secure: bool) -> String {
    cookie(COOKIE_NAME, key, secure)
}

/// Runs a change to what devices are told, for someone allowed to make it: CSRF checked, the
/// store written, the audit log told, devices woken.
pub async fn policy_change<T: Send + 'static>(
    staff: &Staff,
    state: &AppState,
    csrf_token: &str,
    audit: (&str, Option<String>),
    work: impl FnOnce(&crate::store::Store) -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, PageError> {
    staff.check_csrf(csrf_token)?;
    let value = state.store.run(work).await?;
    staff.audit(state, audit.0, audit.1).await?;
    state.commands_changed();
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secret;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; slate_staff=k3y; b=2"));
        assert_eq!(cookie_value(&headers, "slate_staff"), Some("k3y"));
        assert_eq!(cookie_value(&headers, "slate"), None);
        let mut two = HeaderMap::new();
        two.append(header::COOKIE, HeaderValue::from_static("a=1"));
        two.append(header::COOKIE, HeaderValue::from_static("slate_staff=x"));
        assert_eq!(cookie_value(&two, "slate_staff"), Some("x"));
    }

    #[test]
    fn the_staff_cookie_is_locked_down() {
        assert_eq!(staff_cookie("k", false), "slate_staff=k; HttpOnly; SameSite=Strict; Path=/");
        assert_eq!(
            staff_cookie("k", true),
            "__Host-slate_staff=k; HttpOnly; SameSite=Strict; Path=/; Secure"
        );
        assert_eq!(
            clear_cookie("a", true),
            "__Host-a=; HttpOnly; SameSite=Strict; Path=/; Secure; Max-Age=0"
        );
        // Read back by the same name, and only by it: an unprefixed cookie planted over plain
        // HTTP or by another host does not count over HTTPS.
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("slate_session=planted"));
        assert_eq!(request_cookie(&headers, "slate_session", true), None);
        assert_eq!(request_cookie(&headers, "slate_session", false), Some("planted"));
        headers.append(header::COOKIE, HeaderValue::from_static("__Host-slate_session=real"));
        assert_eq!(request_cookie(&headers, "slate_session", true), Some("real"));
    }

    #[test]
    fn the_staff_key_csrf_token_is_derived_and_not_the_key() {
        let key = Secret::from_string("k3y-k3y-k3y".into());
        let token = staff_key_csrf(&key);
        assert_eq!(token.len(), 64);
        assert!(!token.contains("k3y"));
        assert_eq!(token, staff_key_csrf(&key));
    }
}

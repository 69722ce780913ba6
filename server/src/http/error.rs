//! How a request fails: [`PageError`] for staff pages (answered with a page), [`ApiError`] for
//! the JSON APIs (the devices' and the staff's), and the 404 for anything else. Each variant maps
//! to one status and a short message in plain words safe to show; internal causes go to the log
//! only. A refused page keeps the frame of whoever asked: the route's gate draws it again with
//! their navigation ([`for_viewer`]), and a refused form offers the way back to what was typed.

use crate::auth::Role;
use crate::http::{layout, staff, AppState};
use crate::store::StoreError;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use slate_protocol::{DeviceNumber, ErrorReply, ProtocolError, MAX_BODY_BYTES};

/// Why a request failed. Each variant maps to one status and a short message safe to show;
/// internal causes go to the log only.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    Malformed(ProtocolError),
    #[error("request body over {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("cannot read the request body: {0}")]
    UnreadableBody(String),
    #[error("no `Authorization: Bearer` credential")]
    MissingCredential,
    #[error("credential refused")]
    CredentialRefused,
    #[error("enrollment token refused ({0})")]
    EnrollmentRefused(&'static str),
    /// A valid class-set token for a number already enrolled: safe to say to whoever holds the
    /// token, so the device's setup screen can ask IT for another number.
    #[error("device {0} is already enrolled")]
    DeviceNumberTaken(DeviceNumber),
    /// A serial that is not on IT's list (asked with a valid class-set token).
    #[error("serial not on IT's list")]
    SerialNotListed,
    #[error("device {authenticated} sent an event for device {claimed}")]
    OtherDevice { authenticated: DeviceNumber, claimed: DeviceNumber },
    #[error("staff sign-in needed")]
    StaffOnly,
    #[error("the staff member's role may not do this")]
    Forbidden,
    #[error("bad query: {0}")]
    BadQuery(String),
    #[error("not found")]
    NotFound,
    #[error("policy not ready: {0}")]
    NotReady(String),
    #[error("cannot read a list file: {0}")]
    ListFile(std::io::Error),
    #[error("cannot read an update bundle: {0}")]
    BundleFile(std::io::Error),
    #[error("storage failed: {0}")]
    Storage(#[from] StoreError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Malformed(ProtocolError::TooLarge { .. }) | ApiError::TooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Malformed(_) | ApiError::UnreadableBody(_) | ApiError::BadQuery(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::MissingCredential
            | ApiError::CredentialRefused
            | ApiError::EnrollmentRefused(_)
            | ApiError::StaffOnly => StatusCode::UNAUTHORIZED,
            ApiError::OtherDevice { .. } | ApiError::Forbidden => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::SerialNotListed => StatusCode::NOT_FOUND,
            ApiError::DeviceNumberTaken(_) => StatusCode::CONFLICT,
            ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Storage(_) | ApiError::ListFile(_) | ApiError::BundleFile(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// What the client is told. The protocol's own messages name the bad field and carry no
    /// internals, so they are passed on; the rest are fixed phrases.
    fn public_message(&self) -> String {
        match self {
            ApiError::Malformed(e) => e.to_string(),
            ApiError::TooLarge => self.to_string(),
            ApiError::UnreadableBody(_) => "cannot read the request body".into(),
            ApiError::MissingCredential => self.to_string(),
            ApiError::CredentialRefused => self.to_string(),
            ApiError::EnrollmentRefused(_) => "enrollment token refused".into(),
            ApiError::OtherDevice { .. } => "a device may only send its own events".into(),
            ApiError::StaffOnly => "staff sign-in needed: sign in at /staff/login".into(),
            ApiError::Forbidden => self.to_string(),
            ApiError::BadQuery(e) => e.clone(),
            ApiError::NotFound => self.to_string(),
            ApiError::DeviceNumberTaken(device) => {
                format!("device {device} is already enrolled: choose another number")
            }
            ApiError::SerialNotListed => "this serial number is not on IT's list".into(),
            // The school's own records, not secrets: tells IT what to add.
            ApiError::NotReady(_) => self.to_string(),
            ApiError::Storage(_) | ApiError::ListFile(_) | ApiError::BundleFile(_) => {
                "internal error; the server's log has details".into()
            }
        }
    }
}

impl ApiError {
    /// What the log is told. A JSON parser's message can quote the offending value, which may be
    /// a page title or a name: only the kind of fault is logged for those.
    fn log_message(&self) -> String {
        match self {
            ApiError::Malformed(ProtocolError::Malformed(_)) => {
                "malformed request: malformed JSON (details withheld from the log)".into()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::warn!(error = %self.log_message(), status = status.as_u16(), "request refused");
        }
        (status, Json(ErrorReply { error: self.public_message() })).into_response()
    }
}

/// A failed staff page, answered with HTML.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("staff sign-in needed")]
    StaffOnly,
    #[error("staff login link refused")]
    LoginRefused,
    #[error("not found: {0}")]
    NotFound(String),
    #[error("role {0} may not do this")]
    Forbidden(Role),
    /// The role may open the page, but not do this to this record; the sentence says why.
    #[error("not allowed: {0}")]
    NotAllowed(String),
    #[error("form token missing or wrong")]
    Csrf,
    #[error("bad form: {0}")]
    BadForm(String),
    #[error("form body over the size limit")]
    TooLarge,
    #[error("refused: {0}")]
    Conflict(String),
    #[error("password change needed first")]
    MustChangePassword,
    #[error("storage failed: {0}")]
    Storage(#[from] StoreError),
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::MustChangePassword => StatusCode::SEE_OTHER,
            PageError::StaffOnly | PageError::LoginRefused => StatusCode::UNAUTHORIZED,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::Forbidden(_) | PageError::NotAllowed(_) | PageError::Csrf => {
                StatusCode::FORBIDDEN
            }
            PageError::BadForm(_) => StatusCode::BAD_REQUEST,
            PageError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            PageError::Conflict(_) => StatusCode::CONFLICT,
            PageError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The page's heading and its sentence, in plain words: never a library's message.
    fn words(&self) -> (&'static str, String) {
        match self {
            PageError::MustChangePassword => ("Change your password", String::new()),
            PageError::StaffOnly => (
                "Staff only",
                "This page is for staff. Sign in at /staff/login. Lost your password or phone? IT can give you a one-time link from the server (slate-server staff recover).".into(),
            ),
            PageError::LoginRefused => (
                "Link not valid",
                "That link is not valid: it was used, is too old, or is not a link this server made. Sign in at /staff/login, or ask IT for a new one (slate-server staff recover).".into(),
            ),
            PageError::NotFound(what) => ("Not found", what.clone()),
            PageError::Forbidden(role) => (
                "Not for your role",
                format!("Your account's role ({role}) cannot open this. The links above are the pages you can use; ask your DSL if you need this one."),
            ),
            PageError::NotAllowed(message) => ("Not for your role", message.clone()),
            PageError::Csrf => (
                "Form expired",
                "That form is out of date or came from another site. Go back, reload the page and try again.".into(),
            ),
            PageError::BadForm(message) => ("Please check the form", message.clone()),
            PageError::TooLarge => (
                "Too much at once",
                "That was more than this form can take in one go, so nothing was saved. Go back, shorten it or send it in parts, and try again.".into(),
            ),
            PageError::Conflict(message) => ("Not recorded", message.clone()),
            PageError::Storage(_) => (
                "Something went wrong",
                "The page could not be loaded. The server's log has details.".into(),
            ),
        }
    }
}

/// A refused staff page, kept on the response so the route's gate can draw it again inside the
/// signed-in frame (navigation, name, "Sign out") of whoever asked: `PageError` itself does not
/// know who that is.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    pub title: &'static str,
    pub message: String,
}

impl ErrorPage {
    /// The page for `viewer` (`None`: nobody signed in). `form_sent`: the request sent a form,
    /// so the page offers the way back to it with what was typed still in it.
    pub fn render(&self, viewer: Option<&layout::Viewer>, form_sent: bool) -> maud::Markup {
        layout::error_page(viewer, self.title, &self.message, form_sent)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        if let PageError::MustChangePassword = self {
            return Redirect::to("/staff/password").into_response();
        }
        let status = self.status();
        let (title, message) = self.words();
        if status.is_server_error() {
            tracing::error!(error = %self, "staff page failed");
        } else {
            tracing::warn!(error = %self, status = status.as_u16(), "staff page refused");
        }
        let error = ErrorPage { title, message };
        let mut response = (status, error.render(None, false)).into_response();
        response.extensions_mut().insert(error);
        response
    }
}

/// A refused page drawn again for whoever asked (see [`ErrorPage`]); any other answer as it is.
pub fn for_viewer(
    response: Response,
    viewer: Option<&layout::Viewer>,
    form_sent: bool,
) -> Response {
    match response.extensions().get::<ErrorPage>() {
        Some(error) => {
            let page = error.render(viewer, form_sent);
            let mut fresh = (response.status(), page).into_response();
            fresh.extensions_mut().insert(error.clone());
            fresh
        }
        None => response,
    }
}

/// Anything else: 404, as JSON under `/api/`, as a page elsewhere (inside the signed-in frame
/// for staff who are signed in).
pub async fn not_found(State(state): State<AppState>, request: Request) -> Response {
    if request.uri().path().starts_with("/api/") {
        return (StatusCode::NOT_FOUND, Json(ErrorReply { error: "no such endpoint".into() }))
            .into_response();
    }
    let (parts, _) = request.into_parts();
    let response = PageError::NotFound("There is no page at this address.".into()).into_response();
    match staff::who(&parts, &state).await {
        Ok(staff::Who::Staff(staff)) => for_viewer(response, Some(&staff.viewer()), false),
        _ => response,
    }
}

/// `GET /static/back.js`: the error page's "Go back to the form" goes back in the browser's
/// history, where the browser keeps what was typed (a new visit would start the form empty).
pub async fn back_js() -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/javascript; charset=utf-8")], BACK_JS)
        .into_response()
}

const BACK_JS: &str = "\"use strict\";\n\
document.addEventListener(\"click\", function (event) {\n\
  var link = event.target.closest(\"a[data-back]\");\n\
  if (link && window.history.length > 1) { event.preventDefault(); window.history.back(); }\n\
});\n";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_quoted_by_the_json_parser_stay_out_of_the_log() {
        let err =
            ApiError::Malformed(ProtocolError::Malformed("invalid type: \"Amira Khan\"".into()));
        assert!(!err.log_message().contains("Amira"));
        assert!(err.public_message().contains("Amira"), "the device may see its own input");
    }

    #[test]
    fn internal_causes_are_not_sent() {
        let err = ApiError::Storage(StoreError::Corrupt("secret table detail".into()));
        assert_eq!(err.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!err.public_message().contains("secret"));
        let refused = ApiError::EnrollmentRefused("expired");
        assert!(!refused.public_message().contains("expired"), "no hint which tokens exist");
    }
}

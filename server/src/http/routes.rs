//! The route table: each feature lists its routes here with the [`Gate`] each needs, and the
//! router is built from the same list, every route behind its gate. So what a route needs is
//! said once, checked before the handler runs, and the list the role-matrix test walks is the
//! router's own.

use crate::access::{self, Gate, Verdict};
use crate::http::error::{self, ApiError, PageError};
use crate::http::staff::{self, Who};
use crate::http::AppState;
use axum::extract::{Request, State};
use axum::handler::Handler;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;

/// The methods staff pages and devices use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One route: what the role matrix walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// As axum writes it: `/incidents/{id}`.
    pub path: &'static str,
    pub gate: Gate,
}

/// Routes with their gates and handlers, merged from every feature.
#[derive(Default)]
pub struct Routes {
    entries: Vec<(Route, MethodRouter<AppState>)>,
}

impl Routes {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        gate: Gate,
        handler: H,
    ) -> Self {
        self.add(Route { method: Method::Get, path, gate }, axum::routing::get(handler))
    }

    pub fn post<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        gate: Gate,
        handler: H,
    ) -> Self {
        self.add(Route { method: Method::Post, path, gate }, axum::routing::post(handler))
    }

    pub fn add(mut self, route: Route, handler: MethodRouter<AppState>) -> Self {
        self.entries.push((route, handler));
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.entries.extend(other.entries);
        self
    }

    /// Every route, in the order added.
    pub fn table(&self) -> Vec<Route> {
        self.entries.iter().map(|(route, _)| *route).collect()
    }

    /// The router, each route behind its gate.
    pub fn into_router(self, state: &AppState) -> Router<AppState> {
        self.entries.into_iter().fold(Router::new(), |router, (route, handler)| {
            let gate = route.gate;
            let guarded = handler.route_layer(middleware::from_fn_with_state(
                state.clone(),
                move |state: State<AppState>, request: Request, next: Next| {
                    guard(gate, state, request, next)
                },
            ));
            router.route(route.path, guarded)
        })
    }
}

/// Asks who is asking (for gated routes), lets them through or refuses them, and hands the
/// handler the member of staff in the request's extensions (the `Staff` extractor reads it).
/// A page refused to someone signed in, by the gate or the handler, is drawn in their frame.
async fn guard(
    gate: Gate,
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(gate, Gate::Public | Gate::Device) {
        return next.run(request).await;
    }
    let api = request.uri().path().starts_with("/api/");
    let (mut parts, body) = request.into_parts();
    let who = match staff::who(&parts, &state).await {
        Ok(who) => who,
        Err(e) if api => return ApiError::Storage(e).into_response(),
        Err(e) => return PageError::Storage(e).into_response(),
    };
    let staff = match who {
        Who::Staff(staff) => staff,
        Who::MustChangePassword if !api => return PageError::MustChangePassword.into_response(),
        Who::MustChangePassword | Who::Nobody if api => return ApiError::StaffOnly.into_response(),
        Who::MustChangePassword | Who::Nobody => return PageError::StaffOnly.into_response(),
    };
    let viewer = staff.viewer();
    // A form was sent: a POST, or a GET form's fields in the query (who had, the governors' term).
    let form_sent = parts.method == axum::http::Method::POST || parts.uri.query().is_some();
    let response = match access::verdict(gate, Some(staff.role)) {
        Verdict::Pass => {
            parts.extensions.insert(staff);
            next.run(Request::from_parts(parts, body)).await
        }
        Verdict::SignIn if api => ApiError::StaffOnly.into_response(),
        Verdict::SignIn => PageError::StaffOnly.into_response(),
        Verdict::Refuse if api => ApiError::Forbidden.into_response(),
        Verdict::Refuse => PageError::Forbidden(viewer.role).into_response(),
    };
    // A refused page keeps the signed-in frame: navigation, name, "Sign out".
    error::for_viewer(response, Some(&viewer), form_sent)
}

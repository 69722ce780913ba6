//! Every route the router has, asked by every role and by nobody: let through or refused as
//! `access`'s table says, and never a 500. The routes come from `http::routes()`, the list the
//! router itself is built from, so a new route is checked the day it is added.

use crate::common::*;
use slate_server::access::{self, Gate, Verdict};
use slate_server::auth::Role;
use slate_server::http::routes::{Method, Route};
use slate_server::secrets::{Secret, SecretHash};

/// A path with each `{parameter}` filled in with something that exists.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        let end = rest[start..].find('}').unwrap() + start;
        out += &rest[..start];
        out += match &rest[start + 1..end] {
            "id" => "1",
            "number" => "12",
            "name" => "x",
            "sha256" => "0000000000000000000000000000000000000000000000000000000000000000",
            other => panic!("give the role matrix a value for {{{other}}} in {path}"),
        };
        rest = &rest[end + 1..];
    }
    out + rest
}

/// A fresh session for `username` (a route may end it: sign-out), as a cookie and its CSRF token.
fn session(server: &TestServer, username: &str) -> (String, String) {
    let account = server.store.staff_by_username(username).unwrap().unwrap();
    let (id, csrf) = (Secret::generate(), Secret::generate());
    let hash = SecretHash::of(id.expose());
    server.store.create_session(&hash, account.id, csrf.expose(), chrono::Utc::now()).unwrap();
    (format!("slate_session={}", id.expose()), csrf.expose().to_owned())
}

/// What the answer says: the gate refused the role, the gate wants a sign-in, or it got through.
fn answered(status: u16, body: &str) -> Verdict {
    let role_refusal = body.contains("Not for your role") || body.contains("role may not do this");
    let sign_in = body.contains("This page is for staff") || body.contains("staff sign-in needed");
    match status {
        403 if role_refusal => Verdict::Refuse,
        401 if sign_in => Verdict::SignIn,
        _ => Verdict::Pass,
    }
}

#[tokio::test]
async fn role_matrix() {
    let server = TestServer::start().await;
    // Something behind the parameters: device 12 and its incident 1.
    let credential = server.enroll(12).await;
    let reported = server.post_events(Some(&credential), batch(vec![report(12, None, "t")])).await;
    assert_eq!(reported.status(), 200);
    let mut askers: Vec<(String, Option<Role>)> = vec![("anonymous".into(), None)];
    for role in Role::ALL {
        let username = format!("m.{}", role.name().replace('_', "-"));
        add_staff(&server.store, &username, role);
        askers.push((username, Some(role)));
    }

    let routes: Vec<Route> = slate_server::http::routes().table();
    assert!(routes.len() >= 40, "{routes:?}");
    let (mut checks, mut passed, mut refused) = (0, 0, 0);
    let mut wrong = Vec::new();
    for route in &routes {
        let url = format!("{}{}", server.url, concrete(route.path));
        for (username, role) in &askers {
            let (cookie, csrf) = match role {
                Some(_) => session(&server, username),
                None => (String::new(), String::new()),
            };
            let request = match route.method {
                Method::Get => server.client.get(&url),
                Method::Post => server.client.post(&url).form(&[("csrf", csrf.as_str())]),
            };
            let response = request.header("cookie", cookie).send().await.unwrap();
            let status = response.status().as_u16();
            // An endless answer (the live list) is judged by its status alone.
            let body = if route.path == "/reports/live" && status == 200 {
                String::new()
            } else {
                response.text().await.unwrap()
            };
            checks += 1;
            let got = answered(status, &body);
            let expected = match route.gate {
                // A device route checks the device's own credential or token: nobody here has one.
                Gate::Device => {
                    if !matches!(status, 400 | 401) {
                        wrong.push(format!("{route:?} as {username}: {status}, not refused"));
                    }
                    continue;
                }
                gate => access::verdict(gate, *role),
            };
            let unrouted = body.contains("There is no page at this address")
                || body.contains("no such endpoint");
            if status >= 500 || got != expected || unrouted {
                wrong.push(format!(
                    "{:?} {} as {username}: {status} ({got:?}), expected {expected:?}",
                    route.method, route.path
                ));
            }
            match got {
                Verdict::Pass => passed += 1,
                Verdict::Refuse => refused += 1,
                Verdict::SignIn => {}
            }
        }
    }
    assert!(wrong.is_empty(), "{} of {checks}:\n{}", wrong.len(), wrong.join("\n"));
    assert!(passed > 0 && refused > 0, "the matrix let {passed} through and refused {refused}");
    println!("role_matrix routes={} roles={} checks={checks}", routes.len(), askers.len());
    server.stop().await;
}

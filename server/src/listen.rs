//! Where the server listens: the rule that plain HTTP is for loopback only, binding the socket,
//! and the start-up lines printed for people and tests. It does not serve requests.

use socket2::{Domain, Socket, Type};
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ListenError {
    #[error(
        "--plain-http is only allowed on a loopback address (127.0.0.0/8 or ::1), not {0}: \
         pupils' reports must be encrypted on the network"
    )]
    PlainHttpOffLoopback(SocketAddr),
}

/// Refuses plain HTTP anywhere a network could see it (seed 004: personal data "encrypted ...
/// in transit").
pub fn check_plain_http_allowed(addr: SocketAddr, plain_http: bool) -> Result<(), ListenError> {
    if plain_http && !addr.ip().is_loopback() {
        return Err(ListenError::PlainHttpOffLoopback(addr));
    }
    Ok(())
}

/// Binds with SO_REUSEADDR, so a restarted server takes its port back at once even while the
/// old connections linger in TIME_WAIT.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// The lines `serve` prints on start, in order. Tests and scripts parse them: keep the shape.
/// The sign-in page only: no line carries a secret, since stdout ends up in the journal.
pub fn startup_lines(local: SocketAddr, certificate: Option<&Path>) -> Vec<String> {
    let scheme = if certificate.is_some() { "https" } else { "http" };
    // `SocketAddr`'s Display puts an IPv6 address in brackets, as a URL needs.
    let base = format!("{scheme}://{local}");
    let mut lines =
        vec![format!("slate-server listening on {base}"), format!("DSL page: {base}/staff/login")];
    if let Some(cert) = certificate {
        lines.push(format!("certificate: {}", cert.display()));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        let ok = ["127.0.0.1:8080", "127.5.6.7:1", "[::1]:8080"];
        for addr in ok {
            assert_eq!(check_plain_http_allowed(addr.parse().unwrap(), true), Ok(()), "{addr}");
        }
        let refused = ["0.0.0.0:8080", "192.168.1.10:80", "[::]:8080", "10.0.0.1:443"];
        for addr in refused {
            let err = check_plain_http_allowed(addr.parse().unwrap(), true).unwrap_err();
            assert!(err.to_string().contains("--plain-http"), "{addr}: {err}");
            assert_eq!(
                check_plain_http_allowed(addr.parse().unwrap(), false),
                Ok(()),
                "TLS is fine"
            );
        }
    }

    #[test]
    fn startup_lines_have_the_documented_shape() {
        let tls =
            startup_lines("127.0.0.1:8443".parse().unwrap(), Some(Path::new("/d/tls/cert.pem")));
        assert_eq!(
            tls,
            [
                "slate-server listening on https://127.0.0.1:8443",
                "DSL page: https://127.0.0.1:8443/staff/login",
                "certificate: /d/tls/cert.pem",
            ]
        );
        let plain = startup_lines("[::1]:80".parse().unwrap(), None);
        assert_eq!(
            plain,
            ["slate-server listening on http://[::1]:80", "DSL page: http://[::1]:80/staff/login"]
        );
    }

    #[test]
    fn a_port_can_be_taken_again_after_its_listener_closes() {
        let first = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = first.local_addr().unwrap();
        // A connection that is accepted and closed leaves TIME_WAIT behind on the server side.
        let client = std::net::TcpStream::connect(addr).unwrap();
        let (accepted, _) = first.accept().unwrap();
        drop(accepted);
        drop(client);
        drop(first);
        bind(addr).expect("SO_REUSEADDR lets a restarted server take its port back");
    }
}

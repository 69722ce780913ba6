//! The one HTTP/1.1 request reader of the daemon's unit-test servers (the uploader's and the
//! update's, on 127.0.0.1): each test server answers one request per connection, so reading the
//! head and a `Content-Length` body is all they need.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// One request as a test server received it. Header names are kept as sent.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads one request; `None` when the client closed the connection before a whole head.
pub async fn read_request(stream: &mut TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut request = Received { method, path, headers, body: buf[head_end..].to_vec() };
    let len: usize = request.header("content-length").map_or(0, |v| v.parse().unwrap());
    while request.body.len() < len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "short body");
        request.body.extend_from_slice(&chunk[..n]);
    }
    Some(request)
}

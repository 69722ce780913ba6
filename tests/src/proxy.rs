//! A loopback TCP relay that a test can break as networks break: [`Relay::cut`] closes every
//! connection through it and turns new ones away at once (the browser sees its connection
//! reset); [`Relay::stall`] keeps connections open but passes nothing (Wi-Fi gone quiet, no
//! reset ever comes); [`Relay::mend`] lets everything through again.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

pub struct Relay {
    /// `http://127.0.0.1:PORT`: the address to browse instead of the server's.
    pub url: String,
    cut: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// Relays a free loopback port to `target` (`127.0.0.1:PORT`), until the test ends.
    pub fn start(target: SocketAddr) -> Relay {
        assert!(target.ip().is_loopback(), "loopback only: {target}");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the relay");
        let url = format!("http://{}", listener.local_addr().expect("relay address"));
        let cut = Arc::new(AtomicBool::new(false));
        let stalled = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (cut_flag, stall_flag, open_list) = (cut.clone(), stalled.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                if cut_flag.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else { continue };
                let mut open = open_list.lock().unwrap();
                open.extend([&client, &server].iter().filter_map(|s| s.try_clone().ok()));
                pipe(&client, &server, stall_flag.clone());
                pipe(&server, &client, stall_flag.clone());
            }
        });
        Relay { url, cut, stalled, open }
    }

    /// Drops every connection through the relay and refuses new ones.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Holds every byte, in both directions, on every connection, without closing any.
    pub fn stall(&self) {
        self.stalled.store(true, Ordering::SeqCst);
    }

    /// Lets connections through again (what a stall held flows on).
    pub fn mend(&self) {
        self.cut.store(false, Ordering::SeqCst);
        self.stalled.store(false, Ordering::SeqCst);
    }
}

/// Copies `from` to `to` on a thread, holding what it read while `stalled`; when either side
/// ends, both are shut.
fn pipe(from: &TcpStream, to: &TcpStream, stalled: Arc<AtomicBool>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else { return };
    std::thread::spawn(move || {
        let mut buffer = [0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buffer) {
            while stalled.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            if n == 0 || to.write_all(&buffer[..n]).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Both);
        let _ = from.shutdown(Shutdown::Both);
    });
}

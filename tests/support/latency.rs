//! A TCP proxy in front of the apiserver that delays every chunk it forwards, for tests that need
//! a controller under slow API calls without any test hook in the controller itself. TLS passes
//! through untouched (the apiserver's certificate is valid for 127.0.0.1, the proxy's address).
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::{Client, Config};

/// Runs until dropped.
pub struct LatencyProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl LatencyProxy {
    /// Listens on 127.0.0.1 and forwards to `upstream` (host:port), waiting `delay` before every
    /// chunk in either direction (so one request/response round trip costs at least 2 × delay).
    pub fn start(upstream: &str, delay: Duration) -> LatencyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the latency proxy");
        let addr = listener.local_addr().expect("proxy address");
        let stop = Arc::new(AtomicBool::new(false));
        let (upstream, s) = (upstream.to_string(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let _ = client.set_nodelay(true);
                let _ = server.set_nodelay(true);
                for (from, to) in [(&client, &server), (&server, &client)] {
                    let (Ok(from), Ok(to)) = (from.try_clone(), to.try_clone()) else {
                        continue;
                    };
                    let s = s.clone();
                    std::thread::spawn(move || pump(from, to, delay, &s));
                }
            }
        });
        LatencyProxy { addr, stop }
    }

    /// A client like `config`'s that goes through the proxy.
    pub fn client(&self, config: &Config) -> Client {
        let mut config = config.clone();
        let url = format!("https://{}", self.addr);
        config.cluster_url = url.parse().expect("proxy URL");
        Client::try_from(config).expect("client through the proxy")
    }
}

fn pump(mut from: TcpStream, mut to: TcpStream, delay: Duration, stop: &AtomicBool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                std::thread::sleep(delay);
                if stop.load(Ordering::Relaxed) || to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
    let _ = from.shutdown(Shutdown::Read);
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

//! A kube client that rides out an API server outage: requests that could not be sent or
//! answered (connection refused or reset, a TLS handshake cut off) or that got 503 while the
//! server restarts are sent again, every 500 ms, for at most [`OUTAGE`]. The litmus-go stand-in
//! uses it in tests/apiserver_restart.rs: a real experiment pod's client keeps trying through an
//! apiserver restart, and a stand-in that gave up on the first refused connection made that
//! test fail by chance (its pods never ended) instead of measuring the controller.
//!
//! A request that reached the server before the connection broke may be sent twice; the
//! stand-in's writes allow that (its ChaosResult write re-reads on 409, its Events are
//! get-or-create, its annotations are merge patches).
use std::time::Duration;

use http::{Request, Response, StatusCode};
use kube::client::{Body, ClientBuilder};
use kube::{Client, Config};
use tokio::time::Instant;
use tower::BoxError;
use tower::buffer::BufferLayer;
use tower::retry::{Policy, RetryLayer};

/// Longest an outage is ridden out (the graceful apiserver restart takes about 70 s).
pub const OUTAGE: Duration = Duration::from_secs(150);
const PAUSE: Duration = Duration::from_millis(500);

#[derive(Clone)]
struct RideOut {
    /// Set at the first failure of a request; a request's copies share its deadline.
    deadline: Option<Instant>,
}

impl<Res> Policy<Request<Body>, Response<Res>, BoxError> for RideOut {
    type Future = tokio::time::Sleep;

    fn retry(
        &mut self,
        _req: &mut Request<Body>,
        result: &mut Result<Response<Res>, BoxError>,
    ) -> Option<Self::Future> {
        let outage = match result {
            Ok(response) => response.status() == StatusCode::SERVICE_UNAVAILABLE,
            Err(_) => true,
        };
        if !outage {
            return None;
        }
        let deadline = *self.deadline.get_or_insert_with(|| Instant::now() + OUTAGE);
        (Instant::now() < deadline).then(|| tokio::time::sleep(PAUSE))
    }

    fn clone_request(&mut self, req: &Request<Body>) -> Option<Request<Body>> {
        // Only a body held in memory can be sent again (every request of the stand-in's).
        let body = req.body().try_clone()?;
        let mut copy = Request::builder()
            .method(req.method().clone())
            .uri(req.uri().clone())
            .version(req.version())
            .body(body)
            .ok()?;
        *copy.headers_mut() = req.headers().clone();
        *copy.extensions_mut() = req.extensions().clone();
        Some(copy)
    }
}

/// A client for `config` whose requests ride out an API server outage.
pub fn outage_tolerant_client(config: &Config) -> anyhow::Result<Client> {
    let builder = ClientBuilder::try_from(config.clone())?;
    // Retry clones the service it wraps for every attempt; a Buffer makes the boxed stack clonable.
    Ok(builder
        .with_layer(&BufferLayer::new(1024))
        .with_layer(&RetryLayer::new(RideOut { deadline: None }))
        .build())
}

//! Client-side rate limiting of API requests (`--client-qps`, `--client-burst`): a token bucket in
//! front of kube's HTTP stack, so a storm of reconciles cannot flood the apiserver. Long-running
//! watches cost one token when they start.
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tower::{Layer, Service};

type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Limits requests to `qps` per second on average, with bursts of up to `burst`.
#[derive(Clone)]
pub struct RateLimitLayer {
    limiter: Arc<DefaultDirectRateLimiter>,
}

impl RateLimitLayer {
    /// `None` when `qps` is 0 (no limit).
    pub fn new(qps: u32, burst: u32) -> Option<Self> {
        let qps = NonZeroU32::new(qps)?;
        let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Some(Self {
            limiter: Arc::new(RateLimiter::direct(
                Quota::per_second(qps).allow_burst(burst),
            )),
        })
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimited<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RateLimited {
            inner,
            limiter: self.limiter.clone(),
            wait: None,
            permitted: false,
        }
    }
}

/// The service: readiness waits for a token, then for the inner service.
pub struct RateLimited<S> {
    inner: S,
    limiter: Arc<DefaultDirectRateLimiter>,
    wait: Option<Wait>,
    permitted: bool,
}

impl<S, Req> Service<Req> for RateLimited<S>
where
    S: Service<Req>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if !self.permitted {
            let limiter = self.limiter.clone();
            let wait = self
                .wait
                .get_or_insert_with(|| Box::pin(async move { limiter.until_ready().await }));
            match wait.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    self.wait = None;
                    self.permitted = true;
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        // One token per request: the next request waits for a new one.
        self.permitted = false;
        self.inner.call(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};
    use tower::ServiceExt;

    #[tokio::test]
    async fn requests_beyond_the_burst_wait_for_tokens() {
        let layer = RateLimitLayer::new(20, 5).expect("a limit");
        let mut svc = layer.layer(tower::service_fn(|_: ()| async {
            Ok::<_, std::convert::Infallible>(())
        }));
        let start = Instant::now();
        for _ in 0..15 {
            svc.ready().await.unwrap().call(()).await.unwrap();
        }
        // 5 at once, then 10 more at 20/s: about half a second.
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(400), "{took:?}");
        assert!(RateLimitLayer::new(0, 10).is_none(), "qps 0 means no limit");
    }
}

//! HTTP plumbing: the ops endpoints (`/healthz`, `/readyz`, `/metrics`), request metrics, and
//! RFC 9457 problem details.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus::Registry;
use serde::Serialize;

use crate::metrics::{render, HttpMetrics};

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// A dependency check for `/readyz`: `Err` carries a short reason shown to the prober.
pub type ReadinessCheck = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// Builds a readiness check from an async closure.
pub fn readiness<F, Fut>(f: F) -> ReadinessCheck
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    checks: Arc<Vec<(&'static str, ReadinessCheck)>>,
}

/// Wraps a service's API routes (which serve their own `/openapi.json`) with what every HTTP
/// service has: Swagger UI at `/docs`, the ops endpoints, request tracing and panic safety.
pub fn service_router(
    api: Router,
    title: &'static str,
    registry: Registry,
    checks: Vec<(&'static str, ReadinessCheck)>,
) -> Router {
    Router::new()
        .merge(api)
        .merge(swagger_ui_dist::generate_routes(
            swagger_ui_dist::ApiDefinition {
                uri_prefix: "/docs",
                api_definition: swagger_ui_dist::OpenApiSource::Uri("/openapi.json"),
                title: Some(title),
            },
        ))
        .merge(ops_router(registry, checks))
        // 503 is a deliberate answer (read model behind, dependency down: each handler logs its
        // cause) with Retry-After, not a fault of this service: only 500–502 are logged as failures.
        .layer(
            tower_http::trace::TraceLayer::new(
                tower_http::classify::StatusInRangeAsFailures::new(500..=502)
                    .into_make_classifier(),
            )
            .make_span_with(request_span),
        )
        .layer(tower_http::catch_panic::CatchPanicLayer::new())
}

/// The span of one request: a server span continuing the caller's `traceparent` (so a command,
/// the events it stored and the reads that wait for them share one trace).
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    let span = tracing::info_span!(
        "http.request",
        otel.kind = "server",
        otel.name = %format!("{} {}", request.method(), request.uri().path()),
        http.request.method = %request.method(),
        url.path = %request.uri().path(),
    );
    crate::telemetry::follow(
        &span,
        request
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok()),
    );
    span
}

/// `/healthz` (the process is alive), `/readyz` (every named dependency answers), `/metrics`.
pub fn ops_router(registry: Registry, checks: Vec<(&'static str, ReadinessCheck)>) -> Router {
    let state = OpsState {
        registry,
        checks: Arc::new(checks),
    };
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({ "status": "ok" })) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(state): State<OpsState>) -> Response {
    let mut report = serde_json::Map::new();
    let mut ready = true;
    for (name, check) in state.checks.iter() {
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(2), check()).await;
        let status = match outcome {
            Ok(Ok(())) => "ok".to_owned(),
            Ok(Err(reason)) => {
                ready = false;
                reason
            }
            Err(_) => {
                ready = false;
                "timed out".to_owned()
            }
        };
        report.insert((*name).to_owned(), status.into());
    }
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({ "status": if ready { "ready" } else { "not ready" }, "checks": report });
    (code, Json(body)).into_response()
}

async fn metrics(State(state): State<OpsState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        render(&state.registry),
    )
        .into_response()
}

/// Middleware recording `http_requests_total` and `http_request_duration_seconds` by matched
/// route (never the raw path: ids in labels would explode the series count).
pub async fn track_metrics(
    State(metrics): State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    metrics
        .duration
        .with_label_values(&[&method, &route])
        .observe(started.elapsed().as_secs_f64());
    metrics
        .requests
        .with_label_values(&[&method, &route, response.status().as_str()])
        .inc();
    response
}

/// An RFC 9457 problem. `kind` is the stable problem type slug (`insufficient-mana`), served as
/// `/problems/<kind>`: clients match on it, so slugs never change once published.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: impl Into<String>) -> Self {
        Self {
            kind: format!("/problems/{kind}"),
            title: title.into(),
            status: status.as_u16(),
            detail: None,
            field: None,
            retry_after: None,
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let retry_after = self.retry_after;
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/problem+json"),
            )],
            body,
        )
            .into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Bounds a service's API routes: a request still running after `timeout` is answered 503, and
/// beyond `max_concurrent` requests in flight new ones are answered 503 at once instead of
/// queueing (load shedding). Both with `Retry-After` and problem+json. The ops endpoints stay
/// outside, so probes and scrapes still answer under overload.
///
/// The limit is the service's, not each route's: `Router::layer` gives every route its own copy
/// of a layer, so the permits come from one semaphore all the copies share.
pub fn guard(router: Router, timeout: std::time::Duration, max_concurrent: usize) -> Router {
    use tower::ServiceBuilder;
    router.layer(
        ServiceBuilder::new()
            .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                max_concurrent.max(1),
            ))
            .timeout(timeout),
    )
}

async fn overloaded(error: tower::BoxError) -> Response {
    let (kind, detail) = if error.is::<tower::timeout::error::Elapsed>() {
        ("request-timeout", "the request took too long; retry later")
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        ("overloaded", "the service is at capacity; retry later")
    } else {
        tracing::error!(error = %error, "request failed in the service stack");
        (
            "unavailable",
            "the service could not handle the request; retry later",
        )
    };
    Problem::new(StatusCode::SERVICE_UNAVAILABLE, kind, "Service unavailable")
        .detail(detail)
        .retry_after(1)
        .into_response()
}

/// Serves `router` on `bind` until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    bind: &str,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(bind).await?;
    serve_on(listener, router, shutdown).await
}

/// As [`serve`], on a bound listener. Handlers see the peer address (`ConnectInfo`).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    tracing::info!(addr = %listener.local_addr()?, "listening");
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await?;
    Ok(())
}

//! One trace per command across the processes, exported over OTLP/HTTP to a receiver in this
//! test: the command API's request span continues the client's `traceparent`; the relay's publish
//! span, the projector's and the process managers' spans for the command's events are its
//! children; the query API's request span (with its consistency wait) continues the same client
//! trace. An unsampled client trace produces no spans anywhere.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use chaos_tests::stack::{Stack, StackOptions};
use chaos_tests::wait::wait_until;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message;

/// One received span.
#[derive(Debug, Clone)]
struct Received {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
}

type Spans = Arc<Mutex<Vec<Received>>>;

async fn receive(State(spans): State<Spans>, body: Bytes) -> &'static str {
    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf export");
    let mut got = spans.lock().unwrap();
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|a| a.key == "service.name")
            .and_then(|a| a.value.as_ref()?.value.clone())
            .map(|v| match v {
                AnyValue::StringValue(s) => s,
                other => format!("{other:?}"),
            })
            .unwrap_or_default();
        for scope in resource.scope_spans {
            for span in scope.spans {
                got.push(Received {
                    service: service.clone(),
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                });
            }
        }
    }
    ""
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// An OTLP/HTTP traces receiver on a free port: its base URL and what it received.
async fn receiver() -> (String, Spans) {
    let spans: Spans = Arc::default();
    let app = axum::Router::new()
        .route("/v1/traces", post(receive))
        .with_state(spans.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, spans)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_is_one_trace_from_the_command_api_to_the_query_api() {
    let (endpoint, spans) = receiver().await;
    let mut options = StackOptions::default();
    for binary in ["command-api", "relay", "projector", "query-api"] {
        options = options.with_env(binary, "CHAOS__TELEMETRY__OTLP_ENDPOINT", &endpoint);
    }
    let stack = Stack::start(options).await.unwrap();
    let api = stack.commands();
    let alice = api.player("tracer").await.unwrap();
    let created = api
        .create_character(&alice.token, "Tracer", "mage", &[])
        .await
        .unwrap()
        .answer()
        .unwrap();
    let id = created.aggregate_id.clone();

    // A client trace that is not sampled: nobody records anything for it.
    let unsampled_trace = "0af7651916cd43dd8448eb211c80319c";
    let unsampled = format!("00-{unsampled_trace}-b7ad6b7169203331-00");
    api.cast_skill(
        &alice.token,
        &id,
        "fireball",
        &[("traceparent", &unsampled)],
    )
    .await
    .unwrap()
    .answer()
    .unwrap();

    // The traced command, then a read that waits for it, both under the client's span.
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{trace}-{client_span}-01");
    let cast = api
        .cast_skill(
            &alice.token,
            &id,
            "strike",
            &[("traceparent", &traceparent)],
        )
        .await
        .unwrap()
        .answer()
        .unwrap();
    let read = stack
        .queries()
        .get(
            &format!("/v1/characters/{id}/sheet"),
            &[
                ("consistency-token", &cast.consistency_token),
                ("traceparent", &traceparent),
            ],
        )
        .await
        .unwrap();
    assert_eq!(read.status, 200, "{read:?}");

    // Every process's part of the trace arrives (each exports in batches).
    let of_trace = |spans: &Spans| -> Vec<Received> {
        spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace)
            .cloned()
            .collect()
    };
    let got = wait_until(
        "every service's spans of the trace",
        Duration::from_secs(60),
        Duration::from_millis(100),
        || {
            let got = of_trace(&spans);
            async move {
                let has = |service: &str, name: &str| {
                    got.iter()
                        .any(|s| s.service == service && s.name.starts_with(name))
                };
                let wanted = [
                    ("command-api", "POST /v1/characters/"),
                    ("relay", "relay.publish"),
                    ("projector", "project redis"),
                    // Combat reads casts; rewards skips them undecoded (no span of its own).
                    ("projector", "project pm-combat"),
                    ("query-api", "GET /v1/characters/"),
                    ("query-api", "consistency.wait"),
                ];
                let missing: Vec<_> = wanted.iter().filter(|(s, n)| !has(s, n)).collect();
                if missing.is_empty() {
                    Ok(Some(got))
                } else {
                    Err(format!("missing {missing:?}; have {got:?}"))
                }
            }
        },
    )
    .await
    .unwrap();

    let one = |service: &str, name: &str| -> Vec<&Received> {
        got.iter()
            .filter(|s| s.service == service && s.name.starts_with(name))
            .collect()
    };
    let command = one("command-api", "POST /v1/characters/");
    assert_eq!(command.len(), 1, "one request span: {command:?}");
    let command = command[0];
    assert_eq!(
        command.parent_span_id, client_span,
        "the command continues the client's span"
    );
    // The events carry the command handler's span, a child of the request's: each event the
    // cast stored is published and projected as its child.
    let handler: Vec<&Received> = got
        .iter()
        .filter(|s| s.service == "command-api" && s.parent_span_id == command.span_id)
        .collect();
    assert_eq!(handler.len(), 1, "one handler span: {got:?}");
    let handler = handler[0];
    let published = one("relay", "relay.publish");
    assert_eq!(published.len(), cast.events.len(), "{published:?}");
    for span in published
        .iter()
        .chain(&one("projector", "project redis"))
        .chain(&one("projector", "project pm-combat"))
    {
        assert_eq!(
            span.parent_span_id, handler.span_id,
            "{span:?} is a child of the command's handler span {handler:?}"
        );
    }
    let query = one("query-api", "GET /v1/characters/");
    assert_eq!(query.len(), 1, "{query:?}");
    assert_eq!(query[0].parent_span_id, client_span);
    // The wait is inside the handler's span, inside the request's.
    let wait = one("query-api", "consistency.wait");
    let waiter = got
        .iter()
        .find(|s| s.span_id == wait[0].parent_span_id)
        .expect("the wait's parent span");
    assert_eq!(waiter.service, "query-api");
    assert_eq!(waiter.parent_span_id, query[0].span_id);

    // The unsampled trace, earlier than everything above, left nothing.
    let leaked: Vec<Received> = spans
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.trace_id == unsampled_trace)
        .cloned()
        .collect();
    assert!(
        leaked.is_empty(),
        "unsampled spans were exported: {leaked:?}"
    );
}

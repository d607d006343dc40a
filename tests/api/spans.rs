//! Tracing spans: what is logged while a request runs names the request, its client and rule,
//! and the spans reach an OTLP collector when one is configured.

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpResponse, HttpServer, web};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

use crate::helpers::*;

/// A token signed with a key the server has not seen makes it fetch the issuer's keys again,
/// inside the request: that fetch's log line carries the request's span (its id, as the
/// response's `X-Request-Id` says it, and its client) and its own (the issuer).
#[tokio::test]
async fn a_line_logged_inside_a_request_names_the_request_and_its_client() {
    let app = TestApp::spawn().await;
    let (served, _, _) = app.serve_copy("spans", "info", |_| {}).await;
    let request_id = exchange_with_a_new_key(&app, &served.url).await;
    let inside = format!("token_request{{request_id={request_id} client_id=\"orders-svc\"}}");
    for _ in 0..100 {
        if served.count_logged(&inside) > 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(
        served.logged(&format!("{inside}:key_fetch{{issuer=corp}}")),
        "no line inside the request's span {inside}: {:?}",
        served.lines_with("issuer")
    );
}

/// An OTLP/HTTP collector on loopback: what it received, decoded.
struct Collector {
    url: String,
    received: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

impl Collector {
    async fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let received = Arc::new(Mutex::new(Vec::new()));
        let shared = web::Data::new(received.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .route("/v1/traces", web::post().to(collect))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self { url, received }
    }

    /// Every span received so far.
    fn spans(&self) -> Vec<Span> {
        self.received
            .lock()
            .unwrap()
            .iter()
            .flat_map(|r| &r.resource_spans)
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| s.spans.clone())
            .collect()
    }
}

async fn collect(
    body: web::Bytes,
    received: web::Data<Arc<Mutex<Vec<ExportTraceServiceRequest>>>>,
) -> HttpResponse {
    match ExportTraceServiceRequest::decode(body) {
        Ok(request) => {
            received.lock().unwrap().push(request);
            HttpResponse::Ok()
                .content_type("application/x-protobuf")
                .body(Vec::new())
        }
        Err(_) => HttpResponse::BadRequest().finish(),
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) => Some(s.clone()),
            _ => None,
        })
}

/// With `[telemetry] otlp_endpoint`, an exchange's spans reach a real OTLP receiver: the
/// request's span with its id, client and rule, and the key fetch it caused as its child.
#[tokio::test]
async fn an_exchange_s_spans_reach_an_otlp_collector_with_their_attributes_and_parents() {
    let collector = Collector::start().await;
    let app = TestApp::spawn().await;
    let (served, _, _) = app
        .serve_copy_with_env("otlp", "info", &[("OTEL_BSP_SCHEDULE_DELAY", "100")], |c| {
            c.telemetry.otlp_endpoint = Some(collector.url.clone());
        })
        .await;
    let request_id = exchange_with_a_new_key(&app, &served.url).await;
    let mut found = None;
    for _ in 0..200 {
        let spans = collector.spans();
        let request = spans.iter().find(|s| {
            s.name == "token_request" && attribute(s, "request_id").as_ref() == Some(&request_id)
        });
        if let Some(request) = request
            && let Some(fetch) = spans
                .iter()
                .find(|s| s.name == "key_fetch" && s.parent_span_id == request.span_id)
        {
            found = Some((request.clone(), fetch.clone()));
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (request, fetch) = found.expect("the request's span and its key fetch, exported");
    assert_eq!(
        attribute(&request, "client_id").as_deref(),
        Some("orders-svc")
    );
    assert_eq!(
        attribute(&request, "rule").as_deref(),
        Some("orders-to-inventory")
    );
    assert_eq!(fetch.trace_id, request.trace_id);
    assert_eq!(attribute(&fetch, "issuer").as_deref(), Some("corp"));
    let service = collector.received.lock().unwrap()[0].resource_spans[0]
        .resource
        .as_ref()
        .and_then(|r| {
            r.attributes
                .iter()
                .find(|a| a.key == "service.name")
                .cloned()
        })
        .and_then(|a| a.value)
        .and_then(|v| v.value);
    assert_eq!(
        service,
        Some(any_value::Value::StringValue("tessera".into()))
    );
}

/// An exchange at `url` whose subject token is signed with a key the identity provider has just
/// published, so the server fetches the keys again inside the request; its request id.
async fn exchange_with_a_new_key(app: &TestApp, url: &str) -> String {
    let fresh = TestKey::generate(
        jsonwebtoken::Algorithm::ES256,
        &format!("rotated-{}", uuid_like()),
    );
    app.idp.publish(&[&app.key, &fresh]);
    let subject = fresh.sign(&app.claims(json!({})));
    let resp = exchange_request(&app.http, url, &subject, "inventory-api")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.headers()["x-request-id"].to_str().unwrap().to_string()
}

/// `sample_ratio = 0`: the spans stay home, while the exchange works as ever.
#[tokio::test]
async fn a_sample_ratio_of_zero_exports_no_span() {
    let collector = Collector::start().await;
    let app = TestApp::spawn().await;
    let (served, _, _) = app
        .serve_copy_with_env(
            "unsampled",
            "info",
            &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
            |c| {
                c.telemetry.otlp_endpoint = Some(collector.url.clone());
                c.telemetry.sample_ratio = Some(0.0);
            },
        )
        .await;
    exchange_with_a_new_key(&app, &served.url).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(collector.spans().is_empty(), "{:?}", collector.spans());
}

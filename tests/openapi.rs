//! The management API's OpenAPI document, as the real daemon serves it, against the real
//! daemon: every operation it lists is routed and no other method on its paths is, and every
//! request body example it gives is accepted as it is, sent by the operator on the admin
//! socket (the principal every operation admits).

mod common;

use std::path::{Path, PathBuf};

use http_body_util::BodyExt;
use serde_json::Value;

use common::*;

/// One request over the admin socket; the status and the body.
async fn call(socket: &Path, method: &str, path: &str, body: Option<&Value>) -> (u16, String) {
    let stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "estca");
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = request
        .body(http_body_util::Full::new(hyper::body::Bytes::from(body)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn socket(daemon: &TestDaemon) -> PathBuf {
    daemon.dir().path().join("data/admin.sock")
}

async fn served_document(socket: &Path) -> Value {
    let (status, text) = call(socket, "GET", "/api/v1/openapi.json", None).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// `path` with each `{name}` replaced by that path parameter's example in `operation`.
fn with_examples(path: &str, operation: &Value) -> String {
    let mut filled = path.to_owned();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] == "path" {
            let name = parameter["name"].as_str().unwrap();
            let example = parameter["example"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: no example for {name}"));
            filled = filled.replace(&format!("{{{name}}}"), example);
        }
    }
    assert!(
        !filled.contains('{'),
        "{path}: a path parameter has no example"
    );
    filled
}

/// Each documented operation reaches its handler (no 404 "no such API path", no 405); any
/// other method on a documented path answers 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_operations_are_the_routed_ones() {
    let daemon = TestDaemon::start(Options::default());
    let socket = socket(&daemon);
    let doc = served_document(&socket).await;
    // The same document on the HTTPS port, to a client without a certificate.
    let anonymous = EstClient::new(daemon.port, &daemon.dir().root_ca_pem(), None);
    let url = anonymous
        .base
        .replace("/.well-known/est", "/api/v1/openapi.json");
    let answer = anonymous.send(anonymous.http.get(url)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(serde_json::from_str::<Value>(&answer.body).unwrap(), doc);
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 12, "{paths:?}");
    for (path, item) in paths {
        let item = item.as_object().unwrap();
        for method in ["get", "post", "put", "patch", "delete"] {
            let example = item.values().next().unwrap();
            let uri = with_examples(path, example);
            let (status, body) = call(&socket, &method.to_uppercase(), &uri, None).await;
            if item.contains_key(method) {
                assert!(
                    status != 405 && !body.contains("no such API path"),
                    "{method} {path} is documented but not routed: {status} {body}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is routed but not documented: {body}"
                );
            }
        }
    }
    daemon.stop();
}

/// The operations whose request bodies have examples, in an order where each example's
/// prerequisites exist (the contract before its ID, the ID before its changes).
const EXAMPLES_IN_ORDER: [&str; 6] = [
    "post /api/v1/contracts",
    "patch /api/v1/contracts/{code}",
    "post /api/v1/accounts",
    "patch /api/v1/accounts/{id}",
    "post /api/v1/accounts/{id}/certificate",
    "post /api/v1/apps",
];

/// A request built from the document's example, path parameters included, is accepted (2xx)
/// by a fresh daemon, for every operation that has a request body example.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_built_from_the_documents_examples_are_accepted() {
    let daemon = TestDaemon::start(Options::default());
    let socket = socket(&daemon);
    let doc = served_document(&socket).await;
    let mut with_example = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let body = &operation["requestBody"]["content"]["application/json"];
            if !body["example"].is_null() {
                with_example.push(format!("{method} {path}"));
            }
        }
    }
    with_example.sort();
    let mut expected = EXAMPLES_IN_ORDER.to_vec();
    expected.sort();
    assert_eq!(
        with_example, expected,
        "an operation gained or lost a request body example: put it in EXAMPLES_IN_ORDER"
    );
    for name in EXAMPLES_IN_ORDER {
        let (method, path) = name.split_once(' ').unwrap();
        let operation = &doc["paths"][path][method];
        let example = &operation["requestBody"]["content"]["application/json"]["example"];
        let uri = with_examples(path, operation);
        let (status, body) = call(&socket, &method.to_uppercase(), &uri, Some(example)).await;
        assert!(
            (200..300).contains(&status),
            "{name} refused its own example {example}: {status} {body}"
        );
    }
    let account = daemon.dir().account("nozawa1");
    assert_eq!(account["name"], "野沢 一郎 (経理部)", "{account}");
    assert_eq!(account["certificate_choice"], "reissue", "{account}");
    daemon.stop();
}

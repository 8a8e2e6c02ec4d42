//! The management API (`/api/v1/...`, JSON): the operator reaches it over the admin Unix
//! socket, and the `estca` command line is its client, so every administrative action has one
//! implementation. Handlers parse and answer; the registration authority decides.

//!
//! One file per resource (`contracts`, `accounts`, `certificates`, `history`, `apps`,
//! `backup`), each holding its handlers and their request and response types; `caller`
//! (who is asking), `error` (how a refusal reads) and `paging` are shared by all of them.

mod accounts;
mod apps;
pub mod backup;
mod caller;
mod certificates;
mod contracts;
mod error;
mod history;
mod paging;

use std::sync::{Arc, LazyLock};

use axum::http::StatusCode;
use axum::{Json, Router};
use utoipa::openapi::security::SecurityScheme;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use apps::CreatedApp;
pub use certificates::CertificateActionBody;
pub use history::HistoryPage;

use crate::http::ErrorBody;
use crate::ra::RegistrationAuthority;
use error::ApiError;

/// The management API's routes; `base64` lays out the base64 answers of delegated issuance
/// as EST's (`est.single_line_base64`).
pub fn router(ra: Arc<RegistrationAuthority>, base64: crate::http::Base64Lines) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .route("/api/{*rest}", axum::routing::any(unknown_path))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::Extension(base64))
        .with_state(ra)
}

/// Every documented route, each registered once through utoipa-axum's `routes!`, which adds
/// the handler to the router and its `#[utoipa::path]` description to the document: the two
/// cannot disagree. A new route is a handler with `#[utoipa::path(...)]` and one more
/// `.routes(routes!(handler))` here (handlers sharing a path go in the same `routes!`).
fn routes() -> OpenApiRouter<Arc<RegistrationAuthority>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(
            contracts::list_contracts,
            contracts::create_contract
        ))
        .routes(routes!(
            contracts::show_contract,
            contracts::update_contract
        ))
        .routes(routes!(accounts::list_accounts, accounts::create_account))
        .routes(routes!(accounts::show_account, accounts::update_account))
        .routes(routes!(certificates::certificate))
        .routes(routes!(accounts::unlock))
        .routes(routes!(accounts::remove_account))
        .routes(routes!(history::history))
        .routes(routes!(certificates::show_certificate))
        .routes(routes!(apps::list_apps, apps::create_app))
        .routes(routes!(apps::revoke_app))
        .routes(routes!(backup::backup))
        .routes(routes!(openapi_json))
}

/// The OpenAPI document of the management API, generated from the routes' annotations and
/// the request and response types: this module's routes and the operator's CRL view that
/// the admin socket adds ([`crate::revocation::routes::admin_routes`]).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut document = routes().into_openapi();
    document.merge(crate::revocation::routes::admin_routes().into_openapi());
    document
}

/// The document, built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(openapi);

/// What no single route says: the title and description, the server, the security scheme
/// and the error response every route shares.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "estca management API",
        version = "1",
        description = "Manage contracts, IDs and their certificates (the bank notice's 管理機能). \
            Reached over the daemon's HTTPS port with a client certificate — a master ID's (its \
            own contract's public IDs) or an application credential's (its granted contracts) — \
            or, unrestricted and without a certificate, by the operator over the admin Unix \
            socket. IDs outside the caller's scope answer 404. Errors are \
            `{\"error\": code, \"detail\": sentence}`. This document is generated from the \
            handlers and their request and response types."
    ),
    servers((url = "https://localhost:8443", description = "The daemon's HTTPS port (server.listen)")),
    components(responses(ErrorBody)),
    modifiers(&ClientCertificate),
    security(("client_certificate" = []))
)]
struct ApiDoc;

/// Adds the `client_certificate` security scheme (mutual TLS) that every route requires.
struct ClientCertificate;

impl utoipa::Modify for ClientCertificate {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "client_certificate",
            SecurityScheme::MutualTls {
                description: Some(
                    "A TLS client certificate estca issued and that is current: a master ID's \
                     (enrolled with its ID and password) or an application credential's \
                     (POST /api/v1/apps). The operator on the admin Unix socket needs none: \
                     the socket's permissions are the authentication."
                        .to_owned(),
                ),
                deprecated: None,
                extensions: None,
            },
        );
    }
}

/// Largest JSON body accepted (a CSR inside `POST /api/v1/apps` is the largest field).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    summary = "This document (OpenAPI 3.1), generated from the handlers and their types",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json"))
)]
async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    Json(&DOCUMENT)
}

async fn unknown_path() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such API path; see /api/v1/openapi.json",
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(super::openapi()).unwrap()
    }

    /// (method, path, operation) of every operation in the document.
    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut found = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                found.push((method.clone(), path.clone(), operation.clone()));
            }
        }
        found
    }

    /// Every route is described, including the admin socket's CRL view, and nothing else
    /// (the catch-all `/api/{*rest}` that answers 404 is not a route of the API).
    #[test]
    fn the_document_lists_the_registered_routes() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let listed: BTreeSet<String> = operations(&doc)
            .into_iter()
            .map(|(method, path, _)| format!("{method} {path}"))
            .collect();
        assert_eq!(
            listed,
            BTreeSet::from(
                [
                    "get /api/v1/accounts",
                    "post /api/v1/accounts",
                    "get /api/v1/accounts/{id}",
                    "patch /api/v1/accounts/{id}",
                    "post /api/v1/accounts/{id}/certificate",
                    "post /api/v1/accounts/{id}/unlock",
                    "post /api/v1/accounts/{id}/remove",
                    "get /api/v1/apps",
                    "post /api/v1/apps",
                    "post /api/v1/apps/{name}/revoke",
                    "get /api/v1/backup",
                    "get /api/v1/certificates/{serial}",
                    "get /api/v1/contracts",
                    "post /api/v1/contracts",
                    "get /api/v1/contracts/{code}",
                    "patch /api/v1/contracts/{code}",
                    "get /api/v1/crl",
                    "get /api/v1/history",
                    "get /api/v1/openapi.json",
                ]
                .map(String::from)
            )
        );
    }

    /// Every `$ref` points at something the document defines.
    #[test]
    fn every_reference_resolves() {
        fn visit(doc: &Value, node: &Value) {
            match node {
                Value::Object(map) => {
                    if let Some(Value::String(target)) = map.get("$ref") {
                        let pointer = target.strip_prefix('#').unwrap();
                        assert!(doc.pointer(pointer).is_some(), "unresolved $ref {target}");
                    }
                    map.values().for_each(|v| visit(doc, v));
                }
                Value::Array(items) => items.iter().for_each(|v| visit(doc, v)),
                _ => {}
            }
        }
        let doc = document();
        visit(&doc, &doc);
    }

    /// Every operation but the document itself needs the client certificate (or the admin
    /// socket), and describes its refusals with the shared error object; every JSON request
    /// body has an example, and every path parameter one.
    #[test]
    fn operations_carry_security_errors_and_examples() {
        let doc = document();
        assert_eq!(
            doc["components"]["securitySchemes"]["client_certificate"]["type"],
            "mutualTLS"
        );
        assert_eq!(
            doc["security"][0]["client_certificate"],
            Value::Array(vec![])
        );
        let error =
            &doc["components"]["responses"]["ErrorBody"]["content"]["application/json"]["schema"];
        let error = match error["$ref"].as_str() {
            Some(target) => doc.pointer(target.trim_start_matches('#')).unwrap(),
            None => error,
        };
        assert_eq!(
            error["required"],
            serde_json::json!(["error", "detail"]),
            "{}",
            doc["components"]
        );
        for (method, path, operation) in operations(&doc) {
            let name = format!("{method} {path}");
            if path == "/api/v1/openapi.json" {
                assert_eq!(operation["security"], serde_json::json!([{}]), "{name}");
                continue;
            }
            let refusals: Vec<&Value> = operation["responses"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(status, _)| status.starts_with('4'))
                .map(|(_, response)| response)
                .collect();
            assert!(!refusals.is_empty(), "{name} lists no refusal");
            for refusal in refusals {
                assert_eq!(
                    refusal["$ref"], "#/components/responses/ErrorBody",
                    "{name}"
                );
            }
            if let Some(body) = operation["requestBody"]["content"].get("application/json") {
                assert!(body["example"].is_object(), "{name} has no example body");
            }
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] == "path" {
                    assert!(parameter["example"].is_string(), "{name}: {parameter}");
                }
            }
        }
    }

    /// The schemas are the types': the request bodies refuse unknown fields as the handlers
    /// do, and the ID types carry the rule their parser applies.
    #[test]
    fn schemas_follow_the_types() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        for body in [
            "CreateContract",
            "CreateAccount",
            "UpdateAccount",
            "CreateApp",
        ] {
            assert_eq!(schemas[body]["additionalProperties"], false, "{body}");
        }
        assert_eq!(
            schemas["CreateContract"]["required"],
            serde_json::json!(["code", "name"])
        );
        let id = &schemas["AccountId"];
        assert_eq!(id["pattern"], "^[A-Za-z0-9._@-]{1,32}$", "{id}");
        assert_eq!(id["maxLength"], 32);
        let pattern = &schemas["ContractCode"]["pattern"];
        assert_eq!(pattern, "^[A-Za-z0-9_-]{1,16}$");
        assert_eq!(
            schemas["Role"]["enum"],
            serde_json::json!(["master", "user"])
        );
    }
}

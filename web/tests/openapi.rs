//! `/openapi.json`: it parses as an OpenAPI 3.1 document, and every route of
//! the API router (read from `src/app.rs`, where the router is built) is
//! described with each of its methods — and nothing else is.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;

use axum::http::StatusCode;
use common::Portal;

/// `(METHOD, /api/v1/path)` of every route the API router in app.rs declares.
fn router_routes() -> BTreeSet<(String, String)> {
    let source = include_str!("../src/app.rs");
    let start = source
        .find("let api = Router::new()")
        .expect("the API router in app.rs");
    let end = start
        + source[start..]
            .find(".fallback(")
            .expect("the API router's fallback");
    let block = &source[start..end];
    let mut routes = BTreeSet::new();
    for part in block.split(".route(").skip(1) {
        let path = part.split('"').nth(1).expect("a route's path");
        let rest = &part[path.len() + 2..];
        let bytes = rest.as_bytes();
        for method in ["get", "post", "put", "delete", "patch"] {
            let pat = format!("{method}(");
            let mut from = 0;
            while let Some(i) = rest[from..].find(&pat) {
                let at = from + i;
                let boundary = at == 0
                    || !(bytes[at - 1].is_ascii_alphanumeric()
                        || bytes[at - 1] == b'_'
                        || bytes[at - 1] == b':');
                if boundary {
                    routes.insert((method.to_uppercase(), format!("/api/v1{path}")));
                }
                from = at + pat.len();
            }
        }
    }
    routes
}

#[tokio::test]
async fn the_spec_parses_and_covers_every_api_route() {
    let p = Portal::sqlite().await;
    let r = p.get("/openapi.json").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("application/json"));
    let spec = r.json();
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        spec["openapi"]
    );
    // it reads back as an OpenAPI document
    let parsed: utoipa::openapi::OpenApi = serde_json::from_value(spec.clone()).unwrap();
    assert_eq!(parsed.info.title, "certlab portal");

    let mut described = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_some() {
                described.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let routes = router_routes();
    assert!(routes.len() >= 20, "{routes:?}");
    let missing: Vec<_> = routes.difference(&described).collect();
    let extra: Vec<_> = described.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes without a description: {missing:?}"
    );
    assert!(extra.is_empty(), "described but not routed: {extra:?}");

    // every $ref points at a schema that exists
    let text = serde_json::to_string(&spec).unwrap();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for piece in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = piece.split('"').next().unwrap();
        assert!(schemas.contains_key(name), "dangling $ref {name}");
    }
    // the bearer scheme the authenticated routes name
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    p.close().await;
}

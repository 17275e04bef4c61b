//! OpenAPI conventions both APIs share: the bearer scheme, the `Problem` schema, and the answers
//! every operation can give besides its own, added once so no operation forgets one:
//! 400 (a malformed request), 401 (a secured operation without a valid token), 413 and 415 (a
//! body too large or not JSON), 429 (throttled), 503 (a dependency down, the request timed out or
//! the service is at its concurrency limit; with `Retry-After`). All errors are
//! `application/problem+json`.

use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{ResponseBuilder, Responses};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr};
use utoipa::{Modify, ToSchema};

/// An RFC 9457 problem, as every error answer carries it.
#[derive(Debug, serde::Serialize, ToSchema)]
#[schema(title = "Problem")]
pub struct Problem {
    /// The stable problem type, `/problems/<code>`: clients match on it.
    #[serde(rename = "type")]
    #[schema(rename = "type", example = "/problems/insufficient-mana")]
    pub kind: String,
    pub title: String,
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    pub detail: Option<String>,
    /// The request field at fault, where there is one.
    pub field: Option<String>,
}

/// Adds the common answers and the bearer scheme (see the module documentation).
#[derive(Debug)]
pub struct CommonAnswers;

fn problem(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .into()
}

fn retry_later(description: &str) -> RefOr<utoipa::openapi::Response> {
    ResponseBuilder::new()
        .description(description)
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(u64::schema())
                .description(Some("Seconds to wait before retrying"))
                .build(),
        )
        .content(
            "application/problem+json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .into()
}

use utoipa::PartialSchema;

fn add(responses: &mut Responses, status: &str, response: RefOr<utoipa::openapi::Response>) {
    responses
        .responses
        .entry(status.to_owned())
        .or_insert(response);
}

fn decorate(operation: &mut Operation) {
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = operation.request_body.is_some();
    let has_params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let r = &mut operation.responses;
    if has_body || has_params {
        add(
            r,
            "400",
            problem("The request is malformed: a field breaks its schema"),
        );
    }
    if secured {
        add(
            r,
            "401",
            problem("The bearer token is missing, invalid or expired"),
        );
        add(r, "429", retry_later("Too many requests from this account"));
    }
    if has_body {
        add(
            r,
            "413",
            problem("The body is larger than the service accepts"),
        );
        add(r, "415", problem("The body is not application/json"));
    }
    add(
        r,
        "503",
        retry_later(
            "A dependency is unavailable, the request timed out, or the service is at capacity",
        ),
    );
}

impl Modify for CommonAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components
            .schemas
            .insert("Problem".to_owned(), Problem::schema());
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                decorate(operation);
            }
        }
    }
}

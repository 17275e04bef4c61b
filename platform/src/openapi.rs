//! OpenAPI conventions both APIs share: the bearer scheme, the `Problem` schema, and the answers
//! every operation can give besides its own, added once so no operation forgets one:
//! 400 (a malformed request), 401 (a secured operation without a valid token), 413 and 415 (a
//! body too large or not JSON), 429 (throttled), 503 (a dependency down, the request timed out or
//! the service is at its concurrency limit; with `Retry-After`). All errors are
//! `application/problem+json`.
//!
//! And the request fields both APIs take (path ids, bounded integers), each with its check and its
//! schema derived from the same constants, so a client generated from `/openapi.json` sends
//! nothing the server refuses for its shape.

use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::{ResponseBuilder, Responses};
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, KnownFormat, Ref, RefOr, Required};
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
///
/// `throttled`: whether the service answers 429 to a secured operation (the command API limits
/// commands per account; the query API has no limiter, so it never answers 429 and does not say
/// it might).
#[derive(Debug, Clone, Copy)]
pub struct CommonAnswers {
    pub throttled: bool,
}

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

/// Adds `response` as the answer for `status`; an answer the operation already documents keeps
/// its description, and gains the problem body (and `Retry-After`) it lacks, so every error answer
/// states its content type and schema.
fn add(responses: &mut Responses, status: &str, response: RefOr<utoipa::openapi::Response>) {
    match responses.responses.get_mut(status) {
        None => {
            responses.responses.insert(status.to_owned(), response);
        }
        Some(RefOr::T(own)) => {
            if let RefOr::T(common) = response {
                complete(own, common);
            }
        }
        Some(RefOr::Ref(_)) => {}
    }
}

fn complete(own: &mut utoipa::openapi::Response, common: utoipa::openapi::Response) {
    if own.content.is_empty() {
        own.content = common.content;
    }
    for (name, header) in common.headers {
        own.headers.entry(name).or_insert(header);
    }
}

fn decorate(operation: &mut Operation, throttled: bool) {
    // A parameter documented by its own type (with its pattern and range) comes first; utoipa
    // then adds a bare one for the handler's `Path<String>`: keep the documented one only.
    if let Some(parameters) = operation.parameters.as_mut() {
        let mut seen: Vec<(String, ParameterIn)> = Vec::new();
        parameters.retain(|p| {
            let key = (p.name.clone(), p.parameter_in.clone());
            let first = !seen.contains(&key);
            seen.push(key);
            first
        });
    }
    let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_body = operation.request_body.is_some();
    let has_params = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let r = &mut operation.responses;
    // An error answer the operation documents itself (403, 404, 409, 422) is problem+json too.
    let own_errors: Vec<String> = r
        .responses
        .keys()
        .filter(|status| status.starts_with('4') || status.starts_with('5'))
        .cloned()
        .collect();
    for status in own_errors {
        add(r, &status, problem("A problem"));
    }
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
        if throttled {
            add(r, "429", retry_later("Too many requests from this account"));
        }
    }
    // An operation that documents a 429 of its own (login throttling) says when to retry.
    if r.responses.contains_key("429") {
        add(r, "429", retry_later("Too many requests"));
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
                decorate(operation, self.throttled);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Request fields both APIs take, each with its check and its schema from the same constants.

/// The pattern of an aggregate id in a path: a hyphenated UUID, either case.
pub const UUID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/// Parses a path id exactly as [`UUID_PATTERN`] documents it; the canonical (lower-case) form.
pub fn parse_uuid(raw: &str) -> Option<String> {
    let shape = raw.len() == 36
        && raw.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    shape.then(|| raw.to_ascii_lowercase())
}

/// The schema of an id: a string in UUID format matching [`UUID_PATTERN`].
pub fn uuid_schema() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .pattern(Some(UUID_PATTERN))
        .into()
}

/// `{id}` in a path: an aggregate's id (a wallet's id is its character's).
#[derive(Debug)]
pub struct IdPath;

impl utoipa::IntoParams for IdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some("The aggregate's id: a hyphenated UUID"))
            .schema(Some(uuid_schema()))
            .build()]
    }
}

/// An optional query or header parameter named `name` with `schema`.
pub fn optional_parameter(
    name: &str,
    location: ParameterIn,
    description: &str,
    schema: RefOr<Schema>,
) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(location)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(schema))
        .build()
}

/// An integer from `MIN` to `MAX`, as JSON Schema counts integers: any number without a
/// fractional part (`5`, `5.0` and `5e0` are all 5), in a JSON body or as query-string text.
/// Its schema states the same range ([`Bounded::schema_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bounded<const MIN: u64, const MAX: u64>(u64);

impl<const MIN: u64, const MAX: u64> Bounded<MIN, MAX> {
    pub const MINIMUM: u64 = MIN;
    pub const MAXIMUM: u64 = MAX;

    pub fn get(self) -> u64 {
        self.0
    }

    /// The value, or why it is refused.
    pub fn new(value: u64) -> Result<Self, String> {
        if (MIN..=MAX).contains(&value) {
            Ok(Self(value))
        } else {
            Err(Self::expected())
        }
    }

    /// Parses query-string text: a JSON number with no fractional part, in range.
    pub fn parse(text: &str) -> Result<Self, String> {
        // JSON's number grammar, without the whitespace serde_json allows around it.
        if !text
            .bytes()
            .all(|b| b.is_ascii_digit() || b"-+.eE".contains(&b))
        {
            return Err(Self::expected());
        }
        let number: serde_json::Number =
            serde_json::from_str(text).map_err(|_| Self::expected())?;
        let value = integral(&number).ok_or_else(Self::expected)?;
        Self::new(value)
    }

    fn expected() -> String {
        format!("must be an integer from {MIN} to {MAX}")
    }

    /// The schema, with a description of what the value means.
    pub fn schema_with(description: &str) -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(MIN))
            .maximum(Some(MAX))
            .description(Some(description))
            .into()
    }
}

/// A JSON number's value as a `u64`, if it is a non-negative integer (`3.0` counts) in range.
fn integral(number: &serde_json::Number) -> Option<u64> {
    if let Some(n) = number.as_u64() {
        return Some(n);
    }
    let f = number.as_f64()?;
    // 2^64 is exactly representable; every integral f64 below it converts exactly.
    (f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f)).then_some(f as u64)
}

impl<'de, const MIN: u64, const MAX: u64> serde::Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        let number = match value {
            serde_json::Value::Number(n) => n,
            _ => return Err(serde::de::Error::custom(Self::expected())),
        };
        let n = integral(&number).ok_or_else(|| serde::de::Error::custom(Self::expected()))?;
        Self::new(n).map_err(serde::de::Error::custom)
    }
}

impl<const MIN: u64, const MAX: u64> utoipa::PartialSchema for Bounded<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        Self::schema_with(&format!("an integer from {MIN} to {MAX}"))
    }
}

/// A query string's parameters in order; 400 `invalid-query` for one given twice (which value
/// counts would be a guess).
pub fn query_pairs(uri: &axum::http::Uri) -> Result<Vec<(String, String)>, crate::http::Problem> {
    let bad = |detail: String| {
        crate::http::Problem::new(
            axum::http::StatusCode::BAD_REQUEST,
            "invalid-query",
            "Bad request",
        )
        .detail(detail)
    };
    let axum::extract::Query(pairs) =
        axum::extract::Query::<Vec<(String, String)>>::try_from_uri(uri)
            .map_err(|e| bad(e.body_text()))?;
    let mut seen = std::collections::BTreeSet::new();
    for (name, _) in &pairs {
        if !seen.insert(name.as_str()) {
            return Err(bad(format!("{name} is given more than once")).field(name.clone()));
        }
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_what_json_schema_calls_integers() {
        type Limit = Bounded<1, 1000>;
        for (text, ok) in [
            ("1", Some(1)),
            ("1000", Some(1000)),
            ("10.0", Some(10)),
            ("1e2", Some(100)),
            ("0", None),
            ("1001", None),
            ("1.5", None),
            ("-1", None),
            ("+1", None),
            (" 1", None),
            ("abc", None),
            ("", None),
        ] {
            assert_eq!(Limit::parse(text).ok().map(Bounded::get), ok, "{text:?}");
            let json: Result<Limit, _> = serde_json::from_str(text);
            if !text.starts_with(' ') {
                assert_eq!(json.ok().map(Bounded::get), ok, "{text:?} as JSON");
            }
        }
        assert!(
            serde_json::from_str::<Limit>("\"5\"").is_err(),
            "a string is not an integer"
        );
        type Any = Bounded<0, { u64::MAX }>;
        assert_eq!(Any::parse("18446744073709551615").unwrap().get(), u64::MAX);
        assert!(Any::parse("18446744073709551616").is_err());
        assert!(Any::parse("1e20").is_err());
        let schema = serde_json::to_value(Any::schema_with("x")).unwrap();
        assert_eq!(schema["maximum"], serde_json::json!(u64::MAX));
    }

    #[test]
    fn path_ids_are_hyphenated_uuids() {
        assert_eq!(
            parse_uuid("0190A3C2-7D1E-7C3A-9F00-000000000001").as_deref(),
            Some("0190a3c2-7d1e-7c3a-9f00-000000000001")
        );
        for bad in [
            "",
            "0190a3c27d1e7c3a9f00000000000001",
            "{0190a3c2-7d1e-7c3a-9f00-000000000001}",
            "0190a3c2-7d1e-7c3a-9f00-00000000000g",
            "0190a3c2-7d1e-7c3a-9f0-0000000000001",
        ] {
            assert!(parse_uuid(bad).is_none(), "{bad}");
        }
    }
}

//! The command API's OpenAPI document: every route module's paths, plus the shared conventions
//! (`chaos_platform::openapi::CommonAnswers`).

use utoipa::{Modify, OpenApi};

/// The command API's document.
pub fn document() -> utoipa::openapi::OpenApi {
    #[derive(OpenApi)]
    #[openapi(info(
        title = "Chaos World command API",
        version = "1",
        description = "Commands change the game. Errors are application/problem+json (RFC 9457) \
            with a stable `type` per rule. Reads live on the query API."
    ))]
    struct Base;

    let mut doc = Base::openapi();
    for part in crate::routes::documents() {
        doc.merge(part);
    }
    chaos_platform::openapi::CommonAnswers { throttled: true }.modify(&mut doc);
    doc
}

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

#[cfg(test)]
mod tests {
    use serde_json::Value;

    /// Every object a request body can hold is closed (`additionalProperties: false`), as the
    /// handlers refuse unknown fields: a client generated from the document must not send one.
    #[test]
    fn every_request_object_forbids_unknown_fields() {
        let doc = serde_json::to_value(super::document()).unwrap();
        let mut open = Vec::new();
        let mut checked = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let Some(schema) = op.pointer("/requestBody/content/application~1json/schema")
                else {
                    continue;
                };
                let at = format!("{method} {path}");
                check(&doc, schema, &at, &mut open, &mut checked);
            }
        }
        assert!(checked > 10, "only {checked} request objects found");
        assert!(open.is_empty(), "open request objects: {open:#?}");
    }

    fn check(doc: &Value, schema: &Value, at: &str, open: &mut Vec<String>, checked: &mut usize) {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.trim_start_matches("#/components/schemas/");
            let target = &doc["components"]["schemas"][name];
            return check(doc, target, &format!("{at} > {name}"), open, checked);
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            *checked += 1;
            if schema.get("additionalProperties") != Some(&Value::Bool(false)) {
                open.push(at.to_owned());
            }
            for (name, prop) in props {
                check(doc, prop, &format!("{at}.{name}"), open, checked);
            }
        }
        for key in ["oneOf", "anyOf", "allOf"] {
            for (i, part) in schema
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                check(doc, part, &format!("{at} {key}[{i}]"), open, checked);
            }
        }
        if let Some(items) = schema.get("items") {
            check(doc, items, &format!("{at}[]"), open, checked);
        }
    }
}

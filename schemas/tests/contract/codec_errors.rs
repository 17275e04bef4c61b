//! The registry codec against a scripted stand-in HTTP server (no real registry needed): the
//! wire format round trip, and which failures are transient and which are poison.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use chaos_schemas::{catalogue, encode_body, frame, AvroCodec, Error};

use crate::common::{published_samples, sample_of};

type Handler = dyn Fn(&str, &str) -> (u16, String) + Send + Sync;
type ErrorCheck = fn(&Error) -> bool;

/// Serves `handler(method, path)` over HTTP/1.1 on a free local port until the test ends.
fn serve(handler: Arc<Handler>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut content_length = 0;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        content_length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; content_length];
            let _ = reader.read_exact(&mut body);
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or("");
            let path = parts.next().unwrap_or("").split('?').next().unwrap_or("");
            let (status, body) = handler(method, path);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-type: application/vnd.schemaregistry.v1+json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

fn schema_body(text: &str) -> String {
    serde_json::json!({ "schema": text }).to_string()
}

/// The registry's answer to `/schemas/ids/<id>` where ids 1, 2, ... are the catalogue's
/// versions in its order; `None` for any other path or id.
fn catalogue_schema(path: &str) -> Option<(u16, String)> {
    let id = path.strip_prefix("/schemas/ids/")?.parse::<usize>().ok()?;
    let version = catalogue::CATALOGUE.get(id.checked_sub(1)?)?;
    Some((200, schema_body(version.text)))
}

const NOT_FOUND: &str = r#"{"error_code":40403,"message":"Schema not found"}"#;

fn skill_cast_v1() -> &'static str {
    catalogue::current_version("chaos.character.SkillCast")
        .unwrap()
        .text
}

#[tokio::test]
async fn encode_registers_and_decode_resolves_through_the_registry() {
    let registered = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let seen = registered.clone();
    let url = serve(Arc::new(move |method: &str, path: &str| {
        if method == "POST" {
            seen.lock().unwrap().push(path.to_owned());
            // One id per record: the position of the record's newest version in the catalogue
            // (listed oldest first), from 1.
            let id = catalogue::CATALOGUE
                .iter()
                .rposition(|v| path.contains(&format!("-{}/", v.record_name)))
                .map_or(0, |i| i + 1);
            return (200, format!(r#"{{"id":{id}}}"#));
        }
        catalogue_schema(path).unwrap_or_else(|| (404, NOT_FOUND.to_owned()))
    }));
    let codec = AvroCodec::new(&url).unwrap();
    for event in published_samples() {
        let bytes = codec
            .encode("chaos.character.events", &event)
            .await
            .unwrap();
        assert_eq!(bytes[0], 0, "magic byte");
        assert_eq!(
            &bytes[5..],
            encode_body(&event),
            "body after the 5-byte header"
        );
        assert_eq!(codec.decode(&bytes).await.unwrap(), event);
    }
    let subjects = registered.lock().unwrap().clone();
    assert!(subjects
        .contains(&"/subjects/chaos.character.events-chaos.character.SkillCast/versions".into()));
}

#[tokio::test]
async fn poison_messages_are_not_transient() {
    let url = serve(Arc::new(|_: &str, path: &str| match path {
        "/schemas/ids/1" => (200, schema_body(skill_cast_v1())),
        "/schemas/ids/4" => (200, schema_body(r#""string""#)),
        "/schemas/ids/5" => (200, schema_body("{not json")),
        "/schemas/ids/6" => (
            200,
            schema_body(r#"{"type":"record","name":"Other","namespace":"elsewhere","fields":[]}"#),
        ),
        _ => (404, NOT_FOUND.to_owned()),
    }));
    let codec = AvroCodec::new(&url).unwrap();
    let body = encode_body(&sample_of("SkillCast"));

    let cases: Vec<(Vec<u8>, ErrorCheck)> = vec![
        (vec![7, 0, 0, 0, 1, 2], |e| matches!(e, Error::BadFrame(_))),
        (vec![0, 0], |e| matches!(e, Error::BadFrame(_))),
        (frame(2, &body), |e| {
            matches!(e, Error::UnknownSchemaId { id: 2, .. })
        }),
        (frame(4, &body), |e| {
            matches!(e, Error::UnusableWriterSchema(_))
        }),
        (frame(5, &body), |e| {
            matches!(e, Error::UnusableWriterSchema(_))
        }),
        (frame(6, &[]), |e| matches!(e, Error::UnknownRecord(_))),
        (frame(1, &body[..body.len() / 2]), |e| {
            matches!(e, Error::Undecodable { .. })
        }),
    ];
    for (bytes, expected) in cases {
        let err = codec.decode(&bytes).await.unwrap_err();
        assert!(expected(&err), "{bytes:?}: {err}");
        assert!(!err.is_transient(), "{err}");
    }
    // Still decodes good messages.
    assert_eq!(
        codec.decode(&frame(1, &body)).await.unwrap(),
        sample_of("SkillCast")
    );
}

/// Apicurio answers a registration that raced another one storing the same schema with 409
/// "already exists" (seen in CI: two tests registering one record under their own subjects at
/// once); the codec asks once more at once, and a second such answer is left to the caller's
/// retry (transient).
#[tokio::test]
async fn a_registration_that_raced_another_is_asked_again() {
    let raced = r#"{"error_code":409,"message":"An artifact with ID 't-chaos.character.SkillCast' in group 'null' already exists."}"#;
    for (races, answered) in [(1, true), (2, false)] {
        let posts = Arc::new(AtomicUsize::new(0));
        let counter = posts.clone();
        let url = serve(Arc::new(move |method: &str, _path: &str| match method {
            "POST" if counter.fetch_add(1, Ordering::SeqCst) < races => (409, raced.to_owned()),
            "POST" => (200, r#"{"id":1}"#.to_owned()),
            _ => (404, NOT_FOUND.to_owned()),
        }));
        let codec = AvroCodec::new(&url).unwrap();
        let event = sample_of("SkillCast");
        let encoded = codec.encode("t", &event).await;
        if answered {
            assert_eq!(encoded.unwrap(), frame(1, &encode_body(&event)));
        } else {
            let err = encoded.unwrap_err();
            assert!(err.is_transient(), "{err}");
        }
        assert!(posts.load(Ordering::SeqCst) >= 2, "asked again");
    }
}

#[tokio::test]
async fn registry_outages_are_transient_and_recover() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let url = serve(Arc::new(move |method: &str, path: &str| {
        // The first two requests fail, whatever they are; then the registry is healthy.
        if counter.fetch_add(1, Ordering::SeqCst) < 2 {
            return (
                500,
                r#"{"error_code":50001,"message":"store down"}"#.to_owned(),
            );
        }
        match (method, path) {
            ("POST", _) => (200, r#"{"id":1}"#.to_owned()),
            (_, "/schemas/ids/1") => (200, schema_body(skill_cast_v1())),
            _ => (404, NOT_FOUND.to_owned()),
        }
    }));
    let codec = AvroCodec::new(&url).unwrap();
    let event = sample_of("SkillCast");
    let bytes = frame(1, &encode_body(&event));

    let err = codec.decode(&bytes).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(matches!(err, Error::RegistryUnavailable(_)));
    let err = codec.encode("t", &event).await.unwrap_err();
    assert!(err.is_transient(), "{err}");

    // The failures were not cached: the retries reach the (now healthy) registry.
    assert_eq!(codec.decode(&bytes).await.unwrap(), event);
    assert_eq!(codec.encode("t", &event).await.unwrap(), bytes);
}

#[tokio::test]
async fn an_unreachable_registry_is_transient() {
    // Nothing listens on port 1.
    let codec = AvroCodec::new("http://127.0.0.1:1").unwrap();
    let event = sample_of("ZoneEntered");
    let err = codec
        .decode(&frame(1, &encode_body(&event)))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    let err = codec.encode("t", &event).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
}

#[tokio::test]
async fn a_refused_registration_is_not_transient() {
    let url = serve(Arc::new(|_: &str, _: &str| {
        (
            409,
            r#"{"error_code":409,"message":"Schema being registered is incompatible"}"#.to_owned(),
        )
    }));
    let codec = AvroCodec::new(&url).unwrap();
    let err = codec
        .encode("t", &sample_of("SkillCast"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RegistryRejected(_)), "{err}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn encode_refuses_an_envelope_that_disagrees_with_its_event() {
    let codec = AvroCodec::new("http://127.0.0.1:1").unwrap();
    let mut event = sample_of("SkillCast");
    event.envelope.event_type = "ZoneEntered".into();
    let err = codec.encode("t", &event).await.unwrap_err();
    assert!(matches!(err, Error::EventTypeMismatch { .. }), "{err}");
}

/// `record_of` names a message's record from its schema id alone, for every version of every
/// record (an older version names its record's current version), without reading the body;
/// a schema that is no record of the catalogue is `None`, a failed lookup an error.
#[tokio::test]
async fn record_of_names_the_record_by_schema_id_without_the_body() {
    let url = serve(Arc::new(|_: &str, path: &str| {
        if path == "/schemas/ids/1000" {
            return (
                200,
                schema_body(
                    r#"{"type":"record","name":"Other","namespace":"elsewhere","fields":[]}"#,
                ),
            );
        }
        catalogue_schema(path).unwrap_or_else(|| (404, NOT_FOUND.to_owned()))
    }));
    let codec = AvroCodec::new(&url).unwrap();
    for (i, version) in catalogue::CATALOGUE.iter().enumerate() {
        let id = u32::try_from(i + 1).unwrap();
        // Twice: the first asks the registry, the second answers from what the first learned.
        for _ in 0..2 {
            let record = codec
                .record_of(&frame(id, b"\xff not read"))
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("{} v{}", version.record_name, version.version));
            assert_eq!(
                record,
                catalogue::current_version(version.record_name).unwrap()
            );
            assert_eq!(
                (record.aggregate_type, record.event_type),
                (version.aggregate_type, version.event_type)
            );
        }
    }
    assert_eq!(codec.record_of(&frame(1000, &[])).await.unwrap(), None);
    let unknown = codec.record_of(&frame(1001, &[])).await.unwrap_err();
    assert!(
        matches!(unknown, Error::UnknownSchemaId { id: 1001, .. }),
        "{unknown}"
    );
    assert!(matches!(
        codec.record_of(&[7, 0]).await.unwrap_err(),
        Error::BadFrame(_)
    ));
}

/// After `record_of` fails to reach the registry, ids it does not know fail at once for the
/// pause (its callers fall back to the headers; a hung registry would hold every such message
/// for a request timeout), then it asks again; ids it knows still answer meanwhile.
#[tokio::test]
async fn record_of_leaves_a_failing_registry_alone_for_a_pause() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    let url = serve(Arc::new(move |_: &str, path: &str| {
        // The second request fails; the others are answered.
        if counter.fetch_add(1, Ordering::SeqCst) == 1 {
            return (
                500,
                r#"{"error_code":50001,"message":"store down"}"#.to_owned(),
            );
        }
        catalogue_schema(path).unwrap_or_else(|| (404, NOT_FOUND.to_owned()))
    }));
    let pause = std::time::Duration::from_secs(2);
    let codec = AvroCodec::new(&url)
        .unwrap()
        .with_record_lookup_pause(pause);
    let first = catalogue::CATALOGUE[0];
    let known = codec.record_of(&frame(1, &[])).await.unwrap().unwrap();
    assert_eq!(known.record_name, first.record_name);

    let failed_at = std::time::Instant::now();
    let err = codec.record_of(&frame(2, &[])).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    let err = codec.record_of(&frame(3, &[])).await.unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(
        failed_at.elapsed() < pause,
        "the test ran too slowly to tell"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "asked the registry again within the pause"
    );
    assert_eq!(
        codec.record_of(&frame(1, &[])).await.unwrap(),
        Some(known),
        "a known id answers during the pause"
    );

    // After the pause it asks again, and learns.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let record = loop {
        match codec.record_of(&frame(3, &[])).await {
            Ok(record) => break record.unwrap(),
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                assert!(std::time::Instant::now() < deadline, "still paused: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(
        record,
        catalogue::current_version(catalogue::CATALOGUE[2].record_name).unwrap()
    );
    assert!(failed_at.elapsed() >= pause);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

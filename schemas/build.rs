//! Generates the schema catalogue from the files under `avro/`: every
//! `avro/<aggregate>/<EventType>.v<N>.avsc` becomes one entry, embedded with `include_str!`.
//! Adding a schema version is adding a file; the contract tests check the rest (names, versions
//! without gaps, compatibility, documentation).

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    // Read when the script runs, not baked in when it is compiled: cargo reuses a compiled
    // build script for a checkout at another path that shares the target directory (CI's
    // clones share a cached one), which then read the schemas of the first checkout.
    let manifest_dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest_dir).join("avro");
    println!("cargo:rerun-if-changed={}", root.display());
    let mut entries = Vec::new();
    let mut aggregates: Vec<_> = std::fs::read_dir(&root)
        .expect("schemas/avro exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    aggregates.sort();
    for dir in aggregates {
        println!("cargo:rerun-if-changed={}", dir.display());
        let aggregate = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("readable aggregate directory")
            .map(|e| e.expect("readable file entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "avsc"))
            .collect();
        files.sort();
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let stem = name.trim_end_matches(".avsc");
            let (event, version) = stem
                .rsplit_once(".v")
                .unwrap_or_else(|| panic!("{name}: expected <EventType>.v<N>.avsc"));
            let version: u32 = version
                .parse()
                .unwrap_or_else(|_| panic!("{name}: version is not a number"));
            entries.push((aggregate.clone(), event.to_owned(), version, file));
        }
    }
    // Grouped by record, oldest version first.
    entries.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
    let mut out = String::from("&[\n");
    for (aggregate, event, version, file) in entries {
        writeln!(
            out,
            "    SchemaVersion {{ record_name: \"chaos.{aggregate}.{event}\", aggregate_type: \
             \"{aggregate}\", event_type: \"{event}\", version: {version}, path: \
             \"avro/{aggregate}/{event}.v{version}.avsc\", text: include_str!({:?}) }},",
            file.display().to_string()
        )
        .unwrap();
    }
    out.push(']');
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("catalogue.rs");
    std::fs::write(dest, out).unwrap();
}

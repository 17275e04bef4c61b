//! `chaosctl`: the operators' tool. See `chaosctl --help` and docs/operations.md.

#[global_allocator]
static GLOBAL: chaos_platform::Allocator = chaos_platform::ALLOCATOR;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    chaos_platform::disable_transparent_huge_pages();
    let args: Vec<String> = std::env::args().skip(1).collect();
    chaos_chaosctl::run(args).await
}

use chaos_platform::{load_config, shutdown_signal, telemetry};
use chaos_standalone::{run, Settings, DEFAULTS};
use tokio_util::sync::CancellationToken;

/// `chaos [--data-dir DIR] [--config FILE]`: the whole backend in one process.
#[global_allocator]
static GLOBAL: chaos_platform::Allocator = chaos_platform::ALLOCATOR;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chaos_platform::disable_transparent_huge_pages();
    let mut settings: Settings = load_config(DEFAULTS)?;
    if let Some(dir) = data_dir_flag() {
        settings.data_dir = dir.into();
    }
    let _telemetry = telemetry::init("chaos", &settings.telemetry);
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        trigger.cancel();
    });
    run(settings, shutdown, |elapsed| {
        tracing::info!(startup_ms = elapsed.as_millis() as u64, "serving");
    })
    .await
}

fn data_dir_flag() -> Option<String> {
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--data-dir" {
            return args.next();
        }
        if let Some(dir) = arg.strip_prefix("--data-dir=") {
            return Some(dir.to_owned());
        }
    }
    std::env::var("CHAOS_DATA_DIR").ok()
}

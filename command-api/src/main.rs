use chaos_command_api::app::Application;
use chaos_command_api::config::{Config, DEFAULTS};
use chaos_platform::{load_config, shutdown_signal, telemetry};

#[global_allocator]
static GLOBAL: chaos_platform::Allocator = chaos_platform::ALLOCATOR;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    chaos_platform::disable_transparent_huge_pages();
    let config: Config = load_config(DEFAULTS)?;
    let _telemetry = telemetry::init("command-api", &config.telemetry);
    let app = Application::build(&config).await?;
    chaos_platform::http::serve(&config.http.bind, app.router(), shutdown_signal()).await
}

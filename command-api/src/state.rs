use std::sync::Arc;

use crate::auth::{AccountStore, JwtKeys};
use crate::ratelimit::RateLimiter;
use crate::service::CommandService;

/// Everything a handler needs; cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    pub commands: CommandService,
    pub accounts: Arc<dyn AccountStore>,
    pub jwt: JwtKeys,
    pub limiter: Arc<RateLimiter>,
}

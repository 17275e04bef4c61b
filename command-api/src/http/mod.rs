//! The HTTP edge shared by every route: errors, extractors, field types, the command helper,
//! throttles and the OpenAPI document.

pub mod command;
pub mod error;
pub mod extract;
pub mod fields;
pub mod limits;
pub mod openapi;

pub use command::{run, Answer, CommandAnswer};
pub use error::ApiError;
pub use extract::ApiJson;

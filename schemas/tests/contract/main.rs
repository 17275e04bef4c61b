//! The contract test suite: one binary, one module per concern.

mod catalogue;
mod codec_errors;
mod common;
mod compatibility;
mod mapping;
mod registry;
mod strategies;

//! Models: T5 (HF-compatible weights), its configuration and generation.

pub mod config;
pub mod generate;
pub mod t5;

pub use config::T5Config;
pub use t5::T5;

//! Models: T5 (HF-compatible weights), its configuration and generation.

pub mod config;
pub mod generate;
pub mod t5;
pub mod weights;

pub use config::T5Config;
pub use t5::T5;

use crate::data::Tokenizer;
use std::path::PathBuf;

/// A model to train: its configuration, the checkpoint directory its weights start from
/// (`None`: HF's random initialisation, seeded) and its tokenizer.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub config: T5Config,
    pub weights: Option<PathBuf>,
    pub tokenizer: Tokenizer,
}

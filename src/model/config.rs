//! T5 configuration, in HF transformers' `config.json` vocabulary, and the built-in presets.

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct T5Config {
    pub vocab_size: i64,
    pub d_model: i64,
    pub d_kv: i64,
    pub d_ff: i64,
    pub num_layers: i64,
    #[serde(default)]
    pub num_decoder_layers: Option<i64>,
    pub num_heads: i64,
    #[serde(default = "default_buckets")]
    pub relative_attention_num_buckets: i64,
    #[serde(default = "default_max_distance")]
    pub relative_attention_max_distance: i64,
    #[serde(default = "default_dropout")]
    pub dropout_rate: f64,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_ff_proj")]
    pub feed_forward_proj: String,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// Whether the decoder output is scaled by d_model^-0.5 before the vocabulary projection.
    /// transformers 5 writes it (and always ties embeddings); older configs imply it by
    /// `tie_word_embeddings` (T5 v1.0 scales, v1.1 does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_decoder_outputs: Option<bool>,
    #[serde(default)]
    pub decoder_start_token_id: i64,
    #[serde(default)]
    pub pad_token_id: i64,
    #[serde(default = "default_eos")]
    pub eos_token_id: i64,
    #[serde(default = "default_architectures")]
    pub architectures: Vec<String>,
    #[serde(default = "default_model_type")]
    pub model_type: String,
    #[serde(default = "default_true")]
    pub is_encoder_decoder: bool,
}

fn default_buckets() -> i64 {
    32
}
fn default_max_distance() -> i64 {
    128
}
fn default_dropout() -> f64 {
    0.1
}
fn default_eps() -> f64 {
    1e-6
}
fn default_ff_proj() -> String {
    "relu".into()
}
fn default_true() -> bool {
    true
}
fn default_eos() -> i64 {
    1
}
fn default_architectures() -> Vec<String> {
    vec!["T5ForConditionalGeneration".into()]
}
fn default_model_type() -> String {
    "t5".into()
}

/// The feed-forward variant: T5 v1.0 uses ReLU, v1.1 and FLAN-T5 a GELU-gated unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedForward {
    Relu,
    GatedGelu,
}

impl T5Config {
    /// Built-in presets, byte-level (ByT5 ids, vocabulary 384) and sized for training from scratch.
    pub fn preset(name: &str) -> Result<T5Config> {
        let (d_model, d_kv, d_ff, layers, heads) = match name {
            // Fits a 2-core CPU's ten-minute budget; the default recipe's model.
            "tiny" => (128, 32, 512, 3, 4),
            // The benchmark's per-step-overhead configuration.
            "micro" => (64, 16, 256, 2, 4),
            // The benchmark's compute-bound configuration.
            "small" => (256, 32, 1024, 4, 8),
            other => {
                bail!("unknown T5 preset {other:?}; expected one of \"micro\", \"tiny\", \"small\"")
            }
        };
        Ok(T5Config {
            vocab_size: 384,
            d_model,
            d_kv,
            d_ff,
            num_layers: layers,
            num_decoder_layers: Some(layers),
            num_heads: heads,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            dropout_rate: 0.0,
            layer_norm_epsilon: 1e-6,
            feed_forward_proj: "relu".into(),
            tie_word_embeddings: true,
            scale_decoder_outputs: None,
            decoder_start_token_id: 0,
            pad_token_id: 0,
            eos_token_id: 1,
            architectures: default_architectures(),
            model_type: default_model_type(),
            is_encoder_decoder: true,
        })
    }

    pub fn load(path: &Path) -> Result<T5Config> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: T5Config = serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<()> {
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            ("decoder layers", self.decoder_layers()),
        ] {
            if value <= 0 {
                bail!("T5 config: {name} must be positive, got {value}");
            }
        }
        if !(0.0..1.0).contains(&self.dropout_rate) {
            bail!("T5 config: dropout_rate must be in [0, 1), got {}", self.dropout_rate);
        }
        self.feed_forward()?;
        Ok(())
    }

    pub fn decoder_layers(&self) -> i64 {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    pub fn feed_forward(&self) -> Result<FeedForward> {
        match self.feed_forward_proj.as_str() {
            "relu" => Ok(FeedForward::Relu),
            "gated-gelu" => Ok(FeedForward::GatedGelu),
            other => bail!("T5 config: unsupported feed_forward_proj {other:?} (expected \"relu\" or \"gated-gelu\")"),
        }
    }

    pub fn scales_decoder_output(&self) -> bool {
        self.scale_decoder_outputs.unwrap_or(self.tie_word_embeddings)
    }

    pub fn inner_dim(&self) -> i64 {
        self.num_heads * self.d_kv
    }
}

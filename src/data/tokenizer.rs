//! Tokenizers: the byte-level one of ByT5 (the default: no vocabulary file, every UTF-8 byte is a
//! token; ids 0, 1 and 2 are pad, EOS and unknown, byte `b` is id `b + 3`), or any HF
//! `tokenizer.json` (T5's SentencePiece-Unigram, ...) through the `tokenizers` crate.

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const PAD: i64 = 0;
pub const EOS: i64 = 1;
const OFFSET: i64 = 3;

/// How a model turns text into ids; cheap to clone.
#[derive(Clone, Default)]
pub enum Tokenizer {
    #[default]
    Bytes,
    Pretrained(Arc<Pretrained>),
}

pub struct Pretrained {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    eos: i64,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Tokenizer::Bytes => write!(f, "bytes"),
            Tokenizer::Pretrained(p) => write!(f, "{}", p.path.display()),
        }
    }
}

impl Tokenizer {
    /// An HF tokenizer.json; its EOS token is `</s>` (T5's).
    pub fn from_file(path: &Path) -> Result<Tokenizer> {
        let inner = tokenizers::Tokenizer::from_file(path)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("reading the tokenizer {}", path.display()))?;
        let eos = inner.token_to_id("</s>").with_context(|| format!("{}: no `</s>` (EOS) token", path.display()))?;
        Ok(Tokenizer::Pretrained(Arc::new(Pretrained { inner, path: path.to_owned(), eos: eos as i64 })))
    }

    /// The tokenizer of a checkpoint directory: its tokenizer.json, else the byte-level one.
    pub fn of_checkpoint(dir: &Path) -> Result<Tokenizer> {
        let path = dir.join("tokenizer.json");
        if path.is_file() {
            Tokenizer::from_file(&path)
        } else {
            Ok(Tokenizer::Bytes)
        }
    }

    /// Ids the tokenizer can produce (the model's vocabulary must hold them).
    pub fn vocab_size(&self) -> usize {
        match self {
            Tokenizer::Bytes => (OFFSET + 256) as usize,
            Tokenizer::Pretrained(p) => p.inner.get_vocab_size(true),
        }
    }

    /// Encodes `text` into at most `max_len` ids, the last of which is EOS (HF's truncation).
    pub fn encode(&self, text: &str, max_len: usize) -> Result<Encoding> {
        let Tokenizer::Pretrained(p) = self else {
            return Ok(ByteTokenizer.encode(text, max_len));
        };
        let encoding = p
            .inner
            .encode(text, false)
            .map_err(|e| anyhow::anyhow!("tokenizer {} failed on {text:?}: {e}", p.path.display()))?;
        let ids: Vec<i64> = encoding.get_ids().iter().map(|&id| id as i64).collect();
        let keep = ids.len().min(max_len.saturating_sub(1));
        let mut out = ids[..keep].to_vec();
        out.push(p.eos);
        Ok(Encoding { ids: out, truncated: keep < ids.len() })
    }

    /// Decodes ids back to text, skipping special tokens.
    pub fn decode(&self, ids: &[i64]) -> String {
        match self {
            Tokenizer::Bytes => ByteTokenizer.decode(ids),
            Tokenizer::Pretrained(p) => {
                let ids: Vec<u32> = ids.iter().filter(|&&id| id >= 0).map(|&id| id as u32).collect();
                p.inner.decode(&ids, true).unwrap_or_default()
            }
        }
    }

    /// Copies tokenizer.json into a checkpoint directory (nothing for the byte-level one).
    pub fn save_into(&self, dir: &Path) -> Result<()> {
        if let Tokenizer::Pretrained(p) = self {
            std::fs::copy(&p.path, dir.join("tokenizer.json"))
                .with_context(|| format!("copying {} into {}", p.path.display(), dir.display()))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ByteTokenizer;

/// Token ids of one text, EOS-terminated, and whether it had to be cut to fit.
pub struct Encoding {
    pub ids: Vec<i64>,
    pub truncated: bool,
}

impl ByteTokenizer {
    /// Encodes `text` into at most `max_len` ids, the last of which is EOS (HF's truncation).
    pub fn encode(&self, text: &str, max_len: usize) -> Encoding {
        let bytes = text.as_bytes();
        let keep = bytes.len().min(max_len.saturating_sub(1));
        let mut ids = Vec::with_capacity(keep + 1);
        ids.extend(bytes[..keep].iter().map(|&b| b as i64 + OFFSET));
        ids.push(EOS);
        Encoding { ids, truncated: keep < bytes.len() }
    }

    /// Decodes ids back to text, skipping special ids; invalid UTF-8 (a cut multi-byte
    /// character) is replaced rather than failing.
    pub fn decode(&self, ids: &[i64]) -> String {
        let bytes: Vec<u8> =
            ids.iter().filter(|&&id| (OFFSET..OFFSET + 256).contains(&id)).map(|&id| (id - OFFSET) as u8).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_mixed_scripts_with_byt5_ids() {
        let tok = ByteTokenizer;
        let enc = tok.encode("发票 A", 64);
        // 发 and 票 are three UTF-8 bytes each, then space, 'A' and EOS.
        assert_eq!(enc.ids.len(), 6 + 2 + 1);
        assert_eq!(enc.ids[6..], [32 + 3, 65 + 3, EOS]);
        assert_eq!(tok.decode(&enc.ids), "发票 A");
        assert!(!enc.truncated);
    }

    #[test]
    fn truncation_keeps_room_for_eos() {
        let enc = ByteTokenizer.encode("abcdef", 4);
        assert_eq!(enc.ids, [97 + 3, 98 + 3, 99 + 3, EOS]);
        assert!(enc.truncated);
    }
}

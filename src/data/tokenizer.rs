//! The byte-level tokenizer of ByT5: no vocabulary file, every UTF-8 byte is a token.
//! Ids 0, 1 and 2 are pad, EOS and unknown; byte `b` is id `b + 3`.

pub const PAD: i64 = 0;
pub const EOS: i64 = 1;
const OFFSET: i64 = 3;

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

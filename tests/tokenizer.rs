//! HF tokenizer.json support against HF's tokenizers library (fixtures from
//! tests/golden/make_tokenizer.py): the same ids, EOS appended as T5's tokenizer does, truncation
//! that keeps room for EOS, and decoding.

use ftlua::data::Tokenizer;
use std::path::Path;

#[test]
fn a_tokenizer_json_encodes_and_decodes_as_hf_tokenizers_does() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/tokenizer");
    let tokenizer = Tokenizer::from_file(&dir.join("tokenizer.json")).unwrap();
    let golden: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("encodings.json")).unwrap()).unwrap();
    assert_eq!(tokenizer.vocab_size() as u64, golden["vocab_size"].as_u64().unwrap());
    for case in golden["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<i64> = case["ids"].as_array().unwrap().iter().map(|id| id.as_i64().unwrap()).collect();
        let encoding = tokenizer.encode(text, 1000).unwrap();
        assert_eq!(encoding.ids[..encoding.ids.len() - 1], expected[..], "{text:?}");
        assert_eq!(*encoding.ids.last().unwrap(), 1, "EOS (</s>) ends every encoding");
        assert!(!encoding.truncated);
        assert_eq!(tokenizer.decode(&encoding.ids), case["decoded"].as_str().unwrap(), "{text:?}");

        let cut = tokenizer.encode(text, 4).unwrap();
        assert_eq!(cut.ids, [&expected[..3], &[1]].concat(), "{text:?} cut to 4 ids");
        assert!(cut.truncated);
    }
    let missing = Tokenizer::from_file(&dir.join("absent.json")).unwrap_err();
    assert!(format!("{missing:#}").contains("absent.json"), "{missing:#}");
}

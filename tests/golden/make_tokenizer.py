#!/usr/bin/env python3
"""Writes the tokenizer fixtures for tests/tokenizer.rs:
- tests/golden/tokenizer/tokenizer.json: a T5-style SentencePiece-Unigram tokenizer in HF's
  tokenizers format (NFKC, Metaspace, <pad>=0 </s>=1 <unk>=2, `$A </s>` post-processor), trained on
  the bundled invoices with 384 pieces so that it fits the byte-level presets' vocabulary;
- tests/golden/tokenizer/encodings.json: what HF's tokenizers library makes of a few texts (ids
  without special tokens, and the decoded text).

    .venv/bin/python tests/golden/make_tokenizer.py
"""
import json

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

OUT = "tests/golden/tokenizer"
CASES = [
    "What is the total amount?",
    "question: Who is the buyer? context: INVOICE INV-2025-0042 Buyer: Acme Trading Co. Total: $1,234.50",
    "发票号码 INV-2025-001 总金额 ¥28,342.40",
    "  spaces  and\ttabs  ",
]


def main():
    texts = []
    with open("examples/data/invoices.jsonl") as data:
        for line in data:
            record = json.loads(line)
            texts += [record["question"], record["context"], record["answer"]]
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=384, special_tokens=["<pad>", "</s>", "<unk>"], unk_token="<unk>")
    tokenizer.train_from_iterator(texts, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    tokenizer.save(f"{OUT}/tokenizer.json")
    cases = []
    for text in CASES:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids, "decoded": tokenizer.decode(ids)})
    with open(f"{OUT}/encodings.json", "w") as out:
        json.dump({"vocab_size": tokenizer.get_vocab_size(), "cases": cases}, out, ensure_ascii=False, indent=1)
    print("vocab", tokenizer.get_vocab_size(), [len(c["ids"]) for c in cases])


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Writes golden fixtures from HF transformers' T5ForConditionalGeneration for tests/t5_golden.rs:
for a tiny random T5 v1.0 (ReLU, tied embeddings) and v1.1 (gated-GELU, untied lm_head), the
checkpoint as HF saves it (config.json + model.safetensors) and io.safetensors with inputs, logits,
loss, every parameter's gradient after one backward, greedy generations and beam searches (3 beams,
length penalties 1.0 and 0.5, free to stop at EOS). The output embedding is scaled down (flatter
distributions, so beams part from greedy) and EOS made a near-copy of a token the model likes, so
that some hypotheses end early, as a trained model's do.

    .venv/bin/python tests/golden/make_t5.py
"""
import os

import torch
from safetensors.torch import save_file
from transformers import T5Config, T5ForConditionalGeneration

LM_HEAD_SCALE = 0.1
EOS_LIKE = {"relu": 261, "gated": 240}  # EOS's output row := 0.99 × this token's
BEAM_CASES = {"beam3": 1.0, "beam3_lp05": 0.5}

VARIANTS = {
    "relu": dict(feed_forward_proj="relu", tie_word_embeddings=True),
    "gated": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False),
}


def main():
    for name, variant in VARIANTS.items():
        torch.manual_seed(1234)
        config = T5Config(vocab_size=384, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
                          num_heads=4, relative_attention_num_buckets=8, relative_attention_max_distance=20,
                          dropout_rate=0.1, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, **variant)
        model = T5ForConditionalGeneration(config).eval()
        with torch.no_grad():
            model.lm_head.weight *= LM_HEAD_SCALE
            model.lm_head.weight[config.eos_token_id] = model.lm_head.weight[EOS_LIKE[name]] * 0.99
        out_dir = f"tests/golden/t5/{name}"
        os.makedirs(out_dir, exist_ok=True)
        model.save_pretrained(out_dir)

        generator = torch.Generator().manual_seed(7)
        input_ids = torch.randint(3, 384, (3, 30), generator=generator)
        attention_mask = torch.ones_like(input_ids)
        attention_mask[1, 22:] = 0                      # padded rows, as batches have
        attention_mask[2, 9:] = 0
        input_ids[attention_mask == 0] = 0
        labels = torch.randint(3, 384, (3, 7), generator=generator)
        labels[0, 5:] = -100
        labels[2, 3:] = -100

        out = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)
        out.loss.backward()
        tensors = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels,
                   "logits": out.logits.detach(), "loss": out.loss.detach().reshape(1)}
        for param_name, param in model.named_parameters():
            tensors[f"grad.{param_name}"] = param.grad.detach().clone()
        with torch.no_grad():
            greedy = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=12,
                                    do_sample=False, num_beams=1, min_new_tokens=12)
        tensors["greedy"] = greedy[:, 1:].contiguous()  # without the decoder start token
        for key, length_penalty in BEAM_CASES.items():
            with torch.no_grad():
                beams = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=12,
                                       do_sample=False, num_beams=3, length_penalty=length_penalty)
            tensors[key] = beams[:, 1:].contiguous()
            print(name, key, beams[:, 1:].tolist())
        save_file({k: v.contiguous() for k, v in tensors.items()}, f"{out_dir}/io.safetensors")
        print(name, "loss", out.loss.item(), "params", sum(p.numel() for p in model.parameters()))


if __name__ == "__main__":
    main()

//! ftlua's T5 against HF transformers' T5ForConditionalGeneration on tiny random models of both
//! variants (fixtures from tests/golden/make_t5.py): logits, loss, every gradient, greedy output
//! and beam search (3 beams, two length penalties).

use ftlua::model::{generate, weights, T5Config, T5};
use std::collections::HashMap;
use tch::{nn::VarStore, Device, Kind, Tensor};

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

fn check_variant(name: &str) {
    let dir = format!("tests/golden/t5/{name}");
    let config = T5Config::load(format!("{dir}/config.json").as_ref()).unwrap();
    let vs = VarStore::new(Device::Cpu);
    let model = T5::new(&vs.root(), config);
    let unused = weights::load_into(&vs, dir.as_ref()).unwrap();
    assert!(unused.is_empty(), "{name}: HF wrote weights ftlua does not use: {unused:?}");
    let io: HashMap<String, Tensor> =
        Tensor::read_safetensors(format!("{dir}/io.safetensors")).unwrap().into_iter().collect();
    let (input_ids, mask, labels) = (&io["input_ids"], &io["attention_mask"], &io["labels"]);

    let logits = model.forward(input_ids, mask, &model.shift_right(labels).unwrap(), false).unwrap();
    let diff = max_abs_diff(&logits, &io["logits"]);
    assert!(diff < 1e-4, "{name}: logits differ by {diff}");

    let label_tokens = labels.ne(-100).sum(Kind::Int64).double_value(&[]);
    let loss = T5::loss_sum(&logits, labels).unwrap() / label_tokens;
    let loss_diff = (loss.double_value(&[]) - io["loss"].double_value(&[0])).abs();
    assert!(loss_diff < 1e-5, "{name}: loss differs by {loss_diff}");

    loss.backward();
    let variables = vs.variables();
    let mut checked = 0;
    for (key, expected) in io.iter().filter_map(|(k, v)| k.strip_prefix("grad.").map(|n| (n, v))) {
        // HF lists tied weights under each name; ftlua holds the shared matrix once.
        let Some(var) = variables.get(key) else {
            assert!(key.ends_with("embed_tokens.weight") || key == "lm_head.weight", "{name}: no variable {key}");
            continue;
        };
        let diff = max_abs_diff(&var.grad(), expected);
        assert!(diff < 1e-4, "{name}: gradient of {key} differs by {diff}");
        checked += 1;
    }
    assert_eq!(checked, variables.len(), "{name}: every parameter's gradient compared");

    let encoded = model.encode(input_ids, mask, false).unwrap();
    let greedy = generate::greedy(&model, &encoded, mask, 12).unwrap();
    let expected = Vec::<Vec<i64>>::try_from(&io["greedy"]).unwrap();
    for (row, (ours, theirs)) in greedy.iter().zip(&expected).enumerate() {
        // HF was asked for exactly 12 tokens; ftlua stops at EOS, so compare up to it.
        let until_eos: Vec<i64> = theirs.iter().copied().take_while(|&t| t != 1).collect();
        assert_eq!(ours, &until_eos, "{name}: greedy row {row}");
    }

    for (key, length_penalty) in [("beam3", 1.0), ("beam3_lp05", 0.5)] {
        let options = generate::BeamOptions { num_beams: 3, max_new_tokens: 12, length_penalty };
        let ours = generate::beam_search(&model, &encoded, mask, options).unwrap();
        for (row, (ours, theirs)) in ours.iter().zip(&Vec::<Vec<i64>>::try_from(&io[key]).unwrap()).enumerate() {
            let until_eos: Vec<i64> = theirs.iter().copied().take_while(|&t| t != 1).collect();
            assert_eq!(ours, &until_eos, "{name}: {key} row {row}");
        }
    }
}

#[test]
fn t5_v1_0_relu_tied_matches_hf() {
    check_variant("relu");
}

#[test]
fn t5_v1_1_gated_gelu_matches_hf() {
    check_variant("gated");
}

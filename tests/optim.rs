//! ftlua's AdamW against torch.optim.AdamW, step by step (golden values from
//! tests/golden/make_adamw.py), including no decay for layer norms and a clipped-size gradient.

use ftlua::train::optim::AdamW;
use tch::{nn::VarStore, Device, Kind, Tensor};

#[test]
fn adamw_matches_pytorch_step_by_step() {
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("tests/golden/adamw.json").unwrap()).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
    };
    let shape = |name: &str| -> Vec<i64> {
        fixture["shapes"][name].as_array().unwrap().iter().map(|x| x.as_i64().unwrap()).collect()
    };
    let names = ["w", "layer_norm.weight"];
    let vs = VarStore::new(Device::Cpu);
    let root = vs.root();
    let w = root.var_copy("w", &Tensor::from_slice(&floats(&fixture["initial"]["w"])).view(shape("w").as_slice()));
    let ln = (&root / "layer_norm").var_copy(
        "weight",
        &Tensor::from_slice(&floats(&fixture["initial"]["layer_norm.weight"]))
            .view(shape("layer_norm.weight").as_slice()),
    );
    let f = |key: &str| fixture[key].as_f64().unwrap();
    let mut optimizer = AdamW::new(&vs, f("beta1"), f("beta2"), f("eps"));
    for (step, grads) in fixture["grads"].as_array().unwrap().iter().enumerate() {
        optimizer.zero_grad().unwrap();
        let g = |name: &str| Tensor::from_slice(&floats(&grads[name])).view(shape(name).as_slice());
        let loss = (&w * g("w")).sum(Kind::Float) + (&ln * g("layer_norm.weight")).sum(Kind::Float);
        loss.backward();
        // Step 2's update is interrupted after the first parameter and resumed: same result.
        if step == 1 {
            assert!(optimizer.step(f("lr"), f("weight_decay"), Some(1)).is_err());
        }
        optimizer.step(f("lr"), f("weight_decay"), None).unwrap();
        for (name, tensor) in names.iter().zip([&w, &ln]) {
            let expected = floats(&fixture["after"][step][*name]);
            let actual = Vec::<f32>::try_from(tensor.flatten(0, -1)).unwrap();
            for (a, e) in actual.iter().zip(&expected) {
                assert!((a - e).abs() <= 1e-6 * e.abs().max(1.0), "{name} after step {}: {a} vs {e}", step + 1);
            }
        }
    }
}

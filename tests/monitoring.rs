//! TensorBoard event files read back with TensorBoard's own reader (the tensorboard package that
//! `bin/test` installs into .venv): every scalar at the steps it was logged, equal to metrics.jsonl.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;

#[test]
fn tensorboard_reads_every_scalar_at_its_steps() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_with_env(
        &["run", "tests/scripts/resume.lua", "--device", "cpu", "--set", "log_every=2", "--set", "eval_every=4"]
            .into_iter()
            .chain(["--output-dir", dir.path().to_str().unwrap()])
            .collect::<Vec<_>>(),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));

    let python =
        std::env::var("FTLUA_PYTHON").unwrap_or_else(|_| repo().join(".venv/bin/python").display().to_string());
    let read = std::process::Command::new(&python)
        .args([repo().join("tools/read_tfevents.py").to_str().unwrap(), dir.path().to_str().unwrap()])
        .output()
        .unwrap_or_else(|e| panic!("running {python} (bin/test installs it with tensorboard): {e}"));
    assert!(read.status.success(), "{}", text(&read));
    let events: Value = serde_json::from_slice(&read.stdout).unwrap();
    let scalars: BTreeMap<String, Vec<(u64, f64)>> = events["scalars"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(tag, points)| {
            let points = points.as_array().unwrap().iter().map(|p| (p[0].as_u64().unwrap(), p[1].as_f64().unwrap()));
            (tag.clone(), points.collect())
        })
        .collect();

    let records: Vec<Value> = std::fs::read_to_string(dir.path().join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expect = |event: &str, key: &str, tag: &str, steps: &[u64]| {
        let points = scalars.get(tag).unwrap_or_else(|| panic!("no {tag} in {:?}", scalars.keys()));
        let logged: Vec<u64> = points.iter().map(|p| p.0).collect();
        assert_eq!(logged, steps, "{tag} steps");
        for (step, value) in points {
            let record = records.iter().find(|r| r["event"] == event && r["step"] == *step).unwrap();
            let expected = record[key].as_f64().unwrap();
            assert!(
                (value - expected).abs() <= 1e-6 * expected.abs().max(1.0),
                "{tag} at {step}: {value} vs {expected}"
            );
        }
    };
    for key in [
        "loss",
        "learning_rate",
        "grad_norm",
        "batch_size",
        "grad_accum",
        "samples_per_second",
        "tokens_per_second",
        "resident_mib",
        "data_wait_percent",
    ] {
        expect("log", key, &format!("train/{key}"), &[2, 4, 6, 8]);
    }
    for key in ["loss", "exact_match", "f1"] {
        expect("eval", &format!("eval_{key}"), &format!("eval/{key}"), &[4, 8]);
    }
    let settings = events["text"]["run/settings"][0].as_str().expect("the settings as text");
    assert!(settings.contains("\"learning_rate\": 0.002"), "{settings}");
}

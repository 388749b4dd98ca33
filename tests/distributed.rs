//! Data-parallel training, launched the usual way: `torchrun --no-python --nproc_per_node=2
//! ftlua run ...` on loopback (Gloo). The ranks must end with the same weights, equal to one
//! process training with the same effective batch; an out-of-memory error on one rank must change
//! the batch on every rank at the same step; a checkpoint of two processes must resume in one.

mod common;

use common::*;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use tch::Tensor;

const SCRIPT: &str = "tests/scripts/ddp.lua";

fn free_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port().to_string()
}

/// `torchrun --nproc_per_node=2 ftlua run SCRIPT --set SETTING...`, each rank saving its final
/// weights under `weights`.
fn torchrun(out: &Path, weights: &Path, settings: &[&str], env: &[(&str, &str)]) -> Output {
    let torchrun = repo().join(".venv/bin/torchrun");
    assert!(torchrun.exists(), "{} is missing: run bin/setup", torchrun.display());
    std::process::Command::new(&torchrun)
        .args(["--no-python", "--nnodes=1", "--nproc_per_node=2", "--master_addr=127.0.0.1"])
        .arg(format!("--master_port={}", free_port()))
        .arg(env!("CARGO_BIN_EXE_ftlua"))
        .args(run_args(out, settings))
        .current_dir(repo())
        .env("WEIGHTS", weights)
        .envs(env.iter().copied())
        .output()
        .expect("running torchrun")
}

fn run_args(out: &Path, settings: &[&str]) -> Vec<String> {
    let mut args: Vec<String> =
        ["run", SCRIPT, "--device", "cpu", "--output-dir", out.to_str().unwrap()].map(String::from).to_vec();
    for setting in settings {
        args.extend(["--set".to_string(), setting.to_string()]);
    }
    args
}

fn single(out: &Path, weights: &Path, settings: &[&str], env: &[(&str, &str)]) -> Output {
    let args = run_args(out, settings);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let weights = weights.to_str().unwrap();
    let mut env = env.to_vec();
    env.push(("WEIGHTS", weights));
    run_with_env(&args, &env)
}

fn tensors(dir: &Path) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(dir.join("model.safetensors")).unwrap().into_iter().collect()
}

/// The largest absolute difference between two saved models' weights.
fn max_difference(a: &Path, b: &Path) -> f64 {
    let (a, b) = (tensors(a), tensors(b));
    assert_eq!(a.len(), b.len());
    a.iter().map(|(name, x)| (x - &b[name]).abs().max().double_value(&[])).fold(0.0, f64::max)
}

fn losses(out: &Path) -> Vec<f64> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .filter(|record| record["event"] == "log")
        .map(|record| record["loss"].as_f64().unwrap())
        .collect()
}

struct Dirs {
    _root: tempfile::TempDir,
    out: PathBuf,
    weights: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let (out, weights) = (root.path().join("run"), root.path().join("weights"));
    std::fs::create_dir_all(&weights).unwrap();
    Dirs { _root: root, out, weights }
}

#[test]
fn two_processes_train_like_one_with_the_same_effective_batch_and_resume_in_one() {
    let (two, one) = (dirs(), dirs());
    let out = torchrun(&two.out, &two.weights, &["batch_size=4", "grad_accum=1"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = single(&one.out, &one.weights, &["batch_size=4", "grad_accum=2"], &[]);
    assert!(out.status.success(), "{}", text(&out));

    let ranks = max_difference(&two.weights.join("rank-0"), &two.weights.join("rank-1"));
    assert_eq!(ranks, 0.0, "the two ranks must hold the same weights");
    let versus_one = max_difference(&two.weights.join("rank-0"), &one.weights.join("rank-0"));
    eprintln!("2 processes × 4 vs 1 process × 4×2: weights differ by at most {versus_one:e}");
    assert!(versus_one <= 1e-5, "2 processes vs 1: max |Δw| = {versus_one:e}");
    let (two_losses, one_losses) = (losses(&two.out), losses(&one.out));
    assert_eq!(two_losses.len(), 6);
    for (a, b) in two_losses.iter().zip(&one_losses) {
        assert!((a - b).abs() <= 1e-5, "logged losses {two_losses:?} vs {one_losses:?}");
    }
    assert!(!two.weights.join("rank-1").join("metrics.jsonl").exists());

    // Two processes stop at step 3; one process resumes their checkpoint and must end where the
    // one-process run did (accumulation 1 -> 2 keeps the effective batch of 8).
    let halted = dirs();
    let out = torchrun(&halted.out, &halted.weights, &["batch_size=4", "grad_accum=1"], &[("STOP_AT", "3")]);
    assert!(out.status.success(), "{}", text(&out));
    let out = single(&halted.out, &halted.weights, &["batch_size=4", "grad_accum=1", "resume=latest"], &[]);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("gradient accumulation 1 -> 2 keeps the effective batch of 8"), "{log}");
    let resumed = max_difference(&halted.weights.join("rank-0"), &one.weights.join("rank-0"));
    assert!(resumed <= 1e-5, "resumed in one process vs one process throughout: max |Δw| = {resumed:e}");
}

#[test]
fn an_out_of_memory_error_on_rank_1_changes_the_batch_on_both_ranks_at_the_same_step() {
    let run = dirs();
    let inject = [("FTLUA_INJECT_OOM", "rank:1, batch>2")];
    let out = torchrun(&run.out, &run.weights, &["batch_size=4", "grad_accum=1"], &inject);
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    // Each rank's policy sees the step trained (after the retry) with the new batch.
    for rank in 0..2 {
        let expected = format!("rank {rank}: step 1 trained with batch 2x2");
        assert!(log.contains(&expected), "expected {expected:?} in {log}");
    }
    let records = std::fs::read_to_string(run.out.join("metrics.jsonl")).unwrap();
    let oom: Vec<&str> = records.lines().filter(|l| l.contains(r#""event":"oom""#)).collect();
    assert_eq!(oom.len(), 1, "{records}");
    assert!(oom[0].contains(r#""from":[4,1]"#) && oom[0].contains(r#""to":[2,2]"#), "{}", oom[0]);
    assert!(oom[0].contains("another rank"), "rank 0 recovers from rank 1's error: {}", oom[0]);
    assert_eq!(max_difference(&run.weights.join("rank-0"), &run.weights.join("rank-1")), 0.0);
}

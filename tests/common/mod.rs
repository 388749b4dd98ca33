//! Helpers shared by the end-to-end tests that run the `ftlua` binary.
#![allow(dead_code)] // each test crate uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Environment variables the test scripts read; cleared so a developer's shell cannot leak in.
const SCRIPT_VARIABLES: [&str; 12] = [
    "STOP_AT",
    "FAIL_AT",
    "AUGMENT",
    "POLICY",
    "BATCH",
    "ACCUM",
    "FIND",
    "SHRINK",
    "MAX_MEMORY",
    "FTLUA_INJECT_OOM",
    "SLOW_STEPS",
    "WEIGHTS",
];

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `ftlua ARGS` run from the repository root with `env` set and the scripts' variables cleared.
pub fn command(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ftlua"));
    command.args(args).current_dir(repo());
    for var in SCRIPT_VARIABLES {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    command
}

pub fn ftlua(args: &[&str], cwd: &Path) -> Output {
    command(args, &[]).current_dir(cwd).output().expect("running ftlua")
}

pub fn run_with_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    command(args, env).output().expect("running ftlua")
}

pub fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

pub fn write_script(dir: &Path, name: &str, source: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, source).unwrap();
    path
}

/// Steps of the `checkpoint-N` directories in `dir`, oldest first.
pub fn checkpoint_steps(dir: &Path) -> Vec<u64> {
    let mut steps: Vec<u64> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().to_str()?.strip_prefix("checkpoint-")?.parse().ok())
        .collect();
    steps.sort();
    steps
}

/// Asserts that two checkpoints hold the same bytes of weights and optimizer moments.
pub fn assert_same_checkpoint(a: &Path, b: &Path) {
    for file in ["model.safetensors", "optimizer.safetensors"] {
        let (x, y) = (std::fs::read(a.join(file)).unwrap(), std::fs::read(b.join(file)).unwrap());
        assert!(x == y, "{file} differs between {} and {}", a.display(), b.display());
    }
}

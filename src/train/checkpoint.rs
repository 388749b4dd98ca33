//! Checkpoint directories in HF's layout (`model.safetensors` + `config.json`) plus the trainer's
//! own files. Every directory is written aside and renamed into place, so a crash never leaves
//! one that looks whole but is not.

use super::optim::AdamW;
use super::state::TrainerState;
use crate::data::Tokenizer;
use crate::model::{weights, T5Config};
use anyhow::{bail, Context, Result};
use std::fs;
use std::path::{Path, PathBuf};
use tch::{nn::VarStore, Tensor};

/// Writes the model's weights, config and tokenizer (if not the byte-level one) into `dir`
/// (which must exist): a directory `from_pretrained` and `ftlua predict` can load.
pub fn write_model(dir: &Path, vs: &VarStore, config: &T5Config, tokenizer: &Tokenizer) -> Result<()> {
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    Tensor::write_safetensors(&named, dir.join("model.safetensors")).context("writing model.safetensors")?;
    tokenizer.save_into(dir)?;
    write_json(&dir.join("config.json"), config)
}

/// Fills a checkpoint directory: weights and config (HF layout), optimizer moments, trainer
/// state (which holds the data position and schedule position) and the callbacks' state.
pub fn write_checkpoint(
    dir: &Path,
    vs: &VarStore,
    config: &T5Config,
    tokenizer: &Tokenizer,
    optimizer: &AdamW,
    state: &TrainerState,
    callbacks: &serde_json::Value,
) -> Result<()> {
    write_model(dir, vs, config, tokenizer)?;
    Tensor::write_safetensors(&optimizer.state(), dir.join("optimizer.safetensors"))
        .context("writing optimizer.safetensors")?;
    write_json(
        &dir.join("trainer_state.json"),
        &serde_json::json!({"state": state, "optimizer_step": optimizer.step}),
    )?;
    write_json(&dir.join("callbacks.json"), callbacks)
}

/// What a checkpoint restores besides the weights and optimizer moments, which [`load`] copies
/// into place itself.
pub struct Loaded {
    pub trainer: TrainerState,
    pub callbacks: serde_json::Value,
}

/// Reads a checkpoint written by [`write_checkpoint`], checking that it belongs to this model.
/// Every file is read and checked before the model or optimizer is touched, so a damaged
/// checkpoint is refused with the run left as it was. Only safetensors and JSON are read:
/// loading never executes code.
pub fn load(dir: &Path, vs: &VarStore, config: &T5Config, optimizer: &mut AdamW) -> Result<Loaded> {
    let context = || format!("checkpoint {}", dir.display());
    if !dir.is_dir() {
        bail!("{}: no such directory", context());
    }
    let saved_config: T5Config = read_json(&dir.join("config.json")).with_context(context)?;
    if &saved_config != config {
        bail!("{}: its config.json describes another model than this run's", context());
    }
    #[derive(serde::Deserialize)]
    struct Saved {
        state: TrainerState,
        optimizer_step: i64,
    }
    let saved: Saved = read_json(&dir.join("trainer_state.json")).with_context(context)?;
    let callbacks = read_json(&dir.join("callbacks.json")).with_context(context)?;
    let moments: Vec<(String, Vec<i64>)> = optimizer.state().into_iter().map(|(name, t)| (name, t.size())).collect();
    let optimizer_file = dir.join("optimizer.safetensors");
    weights::check_file(&optimizer_file, &moments).with_context(context)?;
    let moments = Tensor::read_safetensors(&optimizer_file).with_context(context)?.into_iter().collect();
    weights::load_into(vs, dir).with_context(context)?;
    optimizer.load_state(moments, saved.optimizer_step)?;
    Ok(Loaded { trainer: saved.state, callbacks })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))
}

/// Creates `final_dir` atomically: `fill` writes into a temporary sibling, whose files are synced
/// before it is renamed into place. A previous `final_dir` is moved aside first and deleted last,
/// so at every instant one whole copy exists; a failed `fill` (disk full, say) leaves no trace.
pub fn write_dir_atomically(final_dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = final_dir.parent().context("checkpoint directory has no parent")?;
    let name = final_dir.file_name().context("checkpoint directory has no name")?.to_string_lossy();
    let tmp = parent.join(format!(".{name}.tmp"));
    let old = parent.join(format!(".{name}.old"));
    if old.exists() && !final_dir.exists() {
        // A crash between the two renames below: the aside copy is the whole one.
        fs::rename(&old, final_dir).with_context(|| format!("restoring {}", final_dir.display()))?;
    }
    for leftover in [&tmp, &old] {
        if leftover.exists() {
            fs::remove_dir_all(leftover).with_context(|| format!("removing {}", leftover.display()))?;
        }
    }
    fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    let filled = fill(&tmp).and_then(|()| {
        for entry in fs::read_dir(&tmp)? {
            fs::File::open(entry?.path())?.sync_all()?;
        }
        Ok(())
    });
    if let Err(error) = filled {
        let _ = fs::remove_dir_all(&tmp);
        return Err(error.context(format!("writing {} (anything saved before is intact)", final_dir.display())));
    }
    if final_dir.exists() {
        fs::rename(final_dir, &old).with_context(|| format!("moving {} aside", final_dir.display()))?;
    }
    fs::rename(&tmp, final_dir).with_context(|| format!("renaming {} to {}", tmp.display(), final_dir.display()))?;
    fs::File::open(parent)?.sync_all()?;
    if old.exists() {
        fs::remove_dir_all(&old).with_context(|| format!("removing {}", old.display()))?;
    }
    Ok(())
}

pub fn checkpoint_dir(output_dir: &Path, step: u64) -> PathBuf {
    output_dir.join(format!("checkpoint-{step}"))
}

/// Steps of the checkpoints in `output_dir`, oldest first.
pub fn checkpoint_steps(output_dir: &Path) -> Result<Vec<u64>> {
    let mut steps = Vec::new();
    for entry in fs::read_dir(output_dir)? {
        let name = entry?.file_name();
        if let Some(step) = name.to_str().and_then(|n| n.strip_prefix("checkpoint-")).and_then(|s| s.parse().ok()) {
            steps.push(step);
        }
    }
    steps.sort_unstable();
    Ok(steps)
}

/// Deletes the oldest checkpoints beyond `limit`, never the one at `keep` (the best).
pub fn rotate(output_dir: &Path, limit: usize, keep: Option<u64>) -> Result<()> {
    let steps = checkpoint_steps(output_dir)?;
    let mut excess = steps.len().saturating_sub(limit);
    for step in steps {
        if excess == 0 {
            break;
        }
        if Some(step) == keep {
            continue;
        }
        fs::remove_dir_all(checkpoint_dir(output_dir, step))?;
        excess -= 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_newest_and_the_best() {
        let dir = tempfile::tempdir().unwrap();
        for step in [10, 20, 30, 40] {
            write_dir_atomically(&checkpoint_dir(dir.path(), step), |d| Ok(fs::write(d.join("x"), "1")?)).unwrap();
        }
        rotate(dir.path(), 2, Some(10)).unwrap();
        assert_eq!(checkpoint_steps(dir.path()).unwrap(), [10, 40]);
        assert!(!dir.path().join(".checkpoint-40.tmp").exists());
    }
}

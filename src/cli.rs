//! The command line: `ftlua run SCRIPT [--set key=value]... [--device ...] [--output-dir DIR]`.

use crate::lua::{self, RunOptions};
use crate::train::settings::{canonical_key, Value};
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use tch::Device;

#[derive(Parser, Debug)]
#[command(name = "ftlua", version, about = "Fine-tune seq2seq and QA models with training policies written in Lua")]
pub struct Cli {
    /// Print less (-q: warnings and errors only).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print more (-v: debug messages).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a Lua training script (e.g. scripts/adaptive.lua).
    Run(RunArgs),
    /// Answer the questions of a JSONL file with a checkpoint: each line gets a `prediction` field.
    Predict(PredictArgs),
    /// Score a checkpoint on a labelled JSONL file; prints JSON with loss, exact_match and f1.
    Eval(EvalArgs),
    /// Summarize run directories (settings that differ, best checkpoint, last eval, diagnosis)
    /// and optionally plot their curves into a PNG.
    Report(ReportArgs),
    /// Print the Lua API: the list of modules, or one module's functions (e.g. `ftlua doc tune`).
    Doc(DocArgs),
}

#[derive(clap::Args, Debug)]
pub struct DocArgs {
    /// A module or class: data, Dataset, model, trainer, schedule, callbacks, tune, ...
    pub module: Option<String>,
}

pub fn doc(args: DocArgs) -> Result<()> {
    match crate::doc::render(args.module.as_deref()) {
        Ok(text) => Ok(print!("{text}")),
        Err(message) => bail!(message),
    }
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Run directories (each holds run.json and metrics.jsonl), e.g. runs/adaptive.
    #[arg(required = true, value_name = "RUN_DIR")]
    pub runs: Vec<PathBuf>,
    /// Also draw train loss, eval loss, the eval metric and the learning rate against steps,
    /// one line per run, into this PNG file.
    #[arg(long, value_name = "FILE")]
    pub png: Option<PathBuf>,
}

pub fn report(args: ReportArgs) -> Result<()> {
    let mut runs = Vec::new();
    for dir in &args.runs {
        match crate::report::search_summary(dir)? {
            Some((table, trial_dirs)) => {
                println!("{}\n{table}\n", dir.display());
                for trial in trial_dirs {
                    runs.push(crate::report::Run::load(&trial)?);
                }
            }
            None => runs.push(crate::report::Run::load(dir)?),
        }
    }
    print!("{}", crate::report::summary(&runs, crate::lua::diagnose_records)?);
    if let Some(png) = &args.png {
        crate::report::write_png(&runs, png)?;
        println!("\nwrote {}", png.display());
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// A checkpoint directory: config.json + model.safetensors (ftlua's or HF transformers').
    pub checkpoint: PathBuf,
    /// JSONL with "question" and "context" (and "answer" for eval) on each line.
    #[arg(long)]
    pub input: PathBuf,
    /// Prompt length cap in bytes (longer prompts are cut, as in training).
    #[arg(long, default_value_t = 512)]
    pub max_source_len: usize,
    /// Longest answer generated, in bytes.
    #[arg(long, default_value_t = 64)]
    pub max_new_tokens: usize,
    /// Beam search with this many beams (1: greedy), as HF's generate(num_beams=...).
    #[arg(long, default_value_t = 1)]
    pub num_beams: usize,
    /// With beams: above 0 favours longer answers, below 0 shorter ones (HF's length_penalty).
    #[arg(long, default_value_t = 1.0)]
    pub length_penalty: f32,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
}

#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Where to write the answered lines (default: standard output).
    #[arg(long)]
    pub output: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
}

impl ModelArgs {
    fn options(&self) -> Result<crate::predict::PredictOptions> {
        Ok(crate::predict::PredictOptions {
            max_source_len: self.max_source_len,
            max_new_tokens: self.max_new_tokens,
            num_beams: self.num_beams.max(1),
            length_penalty: self.length_penalty,
            batch_size: self.batch_size,
            device: self.device.resolve()?,
        })
    }
}

pub fn predict(args: PredictArgs) -> Result<()> {
    let options = args.model.options()?;
    let count = match &args.output {
        Some(path) => {
            let mut file = std::io::BufWriter::new(
                std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
            );
            crate::predict::predict(&args.model.checkpoint, &args.model.input, &mut file, &options)?
        }
        None => {
            crate::predict::predict(&args.model.checkpoint, &args.model.input, &mut std::io::stdout().lock(), &options)?
        }
    };
    tracing::info!("answered {count} questions");
    Ok(())
}

pub fn eval(args: EvalArgs) -> Result<()> {
    let metrics = crate::predict::eval(&args.model.checkpoint, &args.model.input, &args.model.options()?)?;
    println!("{metrics}");
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// The Lua script to run; errors in it are reported as `SCRIPT:LINE: message`.
    pub script: PathBuf,
    /// Override a trainer setting the script passes, e.g. `--set learning_rate=3e-4 --set max_steps=50`.
    /// Values are numbers, true/false, or text; nested settings use dots (`best.metric=eval_loss`).
    /// HF names are accepted (`num_train_epochs`, `per_device_train_batch_size`, ...). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Where to train: `auto` picks CUDA when a GPU is visible, else the CPU.
    #[arg(long, value_enum, default_value_t = DeviceArg::Auto)]
    pub device: DeviceArg,
    /// Directory for checkpoints, metrics and logs; wins over the script's `output_dir`.
    /// Default: runs/<script name>.
    #[arg(long, value_name = "DIR")]
    pub output_dir: Option<PathBuf>,
    /// Continue from the newest checkpoint in the output directory (same as `--set resume=latest`);
    /// weights, optimizer, schedule, data position and callback state are restored.
    #[arg(long)]
    pub resume: bool,
}

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
}

impl DeviceArg {
    fn resolve(self) -> Result<Device> {
        match self {
            DeviceArg::Cpu => Ok(Device::Cpu),
            DeviceArg::Auto if tch::Cuda::is_available() => DeviceArg::Cuda.resolve(),
            DeviceArg::Auto => Ok(Device::Cpu),
            // One GPU per process of a data-parallel run.
            DeviceArg::Cuda if tch::Cuda::is_available() => {
                Ok(Device::Cuda(crate::dist::launch_ranks().1 % tch::Cuda::device_count() as usize))
            }
            DeviceArg::Cuda => {
                bail!("--device cuda: no CUDA device is visible (use --device cpu or auto)")
            }
        }
    }
}

pub fn parse_override(text: &str) -> Result<(String, Value)> {
    let (key, value) = text.split_once('=').with_context(|| format!("--set {text}: expected KEY=VALUE"))?;
    let key = key.trim();
    canonical_key(key).with_context(|| format!("--set {text}"))?;
    Ok((key.to_owned(), Value::parse(value.trim())))
}

pub fn run(args: RunArgs) -> Result<()> {
    let mut overrides = args.overrides.iter().map(|o| parse_override(o)).collect::<Result<Vec<_>>>()?;
    if args.resume {
        overrides.push(("resume".into(), Value::Text("latest".into())));
    }
    if !args.script.is_file() {
        bail!("script not found: {}", args.script.display());
    }
    let stem = args.script.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "run".into());
    let options = RunOptions {
        overrides,
        device: args.device.resolve()?,
        output_dir: args.output_dir,
        default_output_dir: PathBuf::from("runs").join(stem),
    };
    let runtime = lua::new_runtime(options)?;
    lua::run_file(&runtime, &args.script)
}

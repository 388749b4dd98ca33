//! The training engine through its Rust interface, with a recording `Hooks` in place of Lua:
//! the order events fire in, and the effect of each kind of decision.

use anyhow::Result;
use ftlua::data::{Dataset, EncodeOptions, QaSample};
use ftlua::model::{ModelSpec, T5Config};
use ftlua::train::{fit, Decision, Event, FitResult, Hooks, Settings, TrainJob, TrainerState};
use tch::Device;

/// Records every event and answers with `decision` when `event` fires at `step`.
struct Recorder {
    events: Vec<(Event, u64)>,
    trigger: Option<(Event, u64, Decision)>,
}

impl Hooks for Recorder {
    fn wants(&self, _: Event) -> bool {
        true
    }
    fn fire(&mut self, event: Event, state: &TrainerState, _: Option<&serde_json::Value>) -> Result<Decision> {
        self.events.push((event, state.global_step));
        match &self.trigger {
            Some((e, step, decision)) if *e == event && *step == state.global_step => Ok(decision.clone()),
            _ => Ok(Decision::default()),
        }
    }
    fn lr_factor(&mut self, _: u64, _: u64, _: u64) -> Result<f64> {
        Ok(1.0)
    }
    fn state_dict(&mut self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
    fn load_state_dict(&mut self, _: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}

fn job(dir: &std::path::Path, settings: Settings) -> TrainJob {
    let samples = |n: usize| -> Vec<QaSample> {
        (0..n)
            .map(|i| QaSample {
                question: format!("number {i}?"),
                context: format!("the number is N{i:03}"),
                answer: format!("N{i:03}"),
            })
            .collect()
    };
    let options = EncodeOptions { max_source_len: 64, max_target_len: 8, ..EncodeOptions::default() };
    TrainJob {
        settings: Settings { output_dir: Some(dir.to_owned()), report_to_tensorboard: false, ..settings },
        model: ModelSpec { config: T5Config::preset("micro").unwrap(), weights: None, tokenizer: Default::default() },
        train: Dataset::new(samples(8), options.clone()),
        eval: Some(Dataset::new(samples(2), options)),
        device: Device::Cpu,
        output_dir: dir.to_owned(),
        run_info: serde_json::json!({}),
    }
}

fn run(
    settings: Settings,
    trigger: Option<(Event, u64, Decision)>,
) -> (FitResult, Vec<(Event, u64)>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut recorder = Recorder { events: Vec::new(), trigger };
    let result = fit(&job(dir.path(), settings), &mut recorder).unwrap();
    (result, recorder.events, dir)
}

fn base() -> Settings {
    Settings {
        batch_size: 2,
        grad_accum: 2,
        max_steps: Some(3),
        log_every: 2,
        eval_every: 2,
        save_every: 2,
        max_new_tokens: Some(2),
        ..Settings::default()
    }
}

#[test]
fn events_fire_in_order() {
    use Event::*;
    let (_, events, _dir) = run(base(), None);
    let step = |s: u64| vec![(StepBegin, s), (SubstepEnd, s), (SubstepEnd, s), (PreOptimizerStep, s), (StepEnd, s + 1)];
    let mut expected = vec![(TrainBegin, 0), (EpochBegin, 0)];
    expected.extend(step(0));
    expected.extend(step(1));
    expected.extend([(Log, 2), (EvalBegin, 2), (EvalEnd, 2), (Save, 2), (EpochEnd, 2), (EpochBegin, 2)]);
    expected.extend(step(2));
    expected.extend([(EvalBegin, 3), (EvalEnd, 3), (Save, 3), (TrainEnd, 3)]);
    assert_eq!(events, expected);
}

#[test]
fn each_decision_kind_takes_effect() {
    let at = |decision: Decision| Some((Event::StepEnd, 1, decision));
    let cases: Vec<(&str, Decision, Box<dyn Fn(&FitResult, &[(Event, u64)], &std::path::Path)>)> = vec![
        (
            "stop",
            Decision { stop: Some("enough".into()), ..Decision::default() },
            Box::new(|r, _, _| {
                assert_eq!(r.state.global_step, 1);
                assert_eq!(r.state.stop_reason.as_deref(), Some("enough"));
            }),
        ),
        ("lr", Decision { lr: Some(1e-5), ..Decision::default() }, Box::new(|r, _, _| assert_eq!(r.state.lr, 1e-5))),
        (
            "weight_decay",
            Decision { weight_decay: Some(0.05), ..Decision::default() },
            Box::new(|r, _, _| assert_eq!(r.state.weight_decay, 0.05)),
        ),
        (
            "batch",
            Decision { batch_size: Some(1), grad_accum: Some(4), ..Decision::default() },
            Box::new(|r, events, _| {
                assert_eq!((r.state.batch_size, r.state.grad_accum), (1, 4));
                let substeps = events.iter().filter(|(e, s)| *e == Event::SubstepEnd && *s == 1).count();
                assert_eq!(substeps, 4, "step 1 ran in four micro-batches");
            }),
        ),
        (
            "save",
            Decision { save: true, ..Decision::default() },
            Box::new(|_, _, dir| {
                assert!(dir.join("checkpoint-1/model.safetensors").is_file());
            }),
        ),
        (
            "eval",
            Decision { eval: true, ..Decision::default() },
            Box::new(|_, events, _| {
                assert!(events.contains(&(Event::EvalEnd, 1)));
            }),
        ),
    ];
    for (name, decision, check) in cases {
        let (result, events, dir) = run(base(), at(decision));
        check(&result, &events, dir.path());
        eprintln!("decision {name}: ok");
    }
}

#[test]
fn evaluation_and_saving_each_epoch() {
    let settings = Settings {
        eval_every: 0,
        save_every: 0,
        eval_each_epoch: true,
        save_each_epoch: true,
        max_steps: Some(5),
        ..base()
    };
    let (_, events, dir) = run(settings, None);
    let evals: Vec<u64> = events.iter().filter(|(e, _)| *e == Event::EvalEnd).map(|(_, s)| *s).collect();
    assert_eq!(evals, [2, 4, 5], "two steps per epoch, then the final evaluation");
    for step in [2, 4, 5] {
        assert!(dir.path().join(format!("checkpoint-{step}")).is_dir(), "checkpoint-{step}");
    }
}

#[test]
fn deleting_checkpoints_spares_the_newest() {
    let delete = Decision { delete_checkpoints: vec![2, 3], ..Decision::default() };
    let (_, _, dir) = run(base(), Some((Event::Save, 3, delete)));
    assert!(!dir.path().join("checkpoint-2").exists(), "checkpoint-2 was deleted");
    assert!(dir.path().join("checkpoint-3/model.safetensors").is_file(), "the newest checkpoint is kept");
    let log = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    assert!(log.contains(r#""checkpoint":2,"event":"delete_checkpoint""#), "{log}");
}

//! End-to-end tests of the `ftlua` binary: command line, Lua errors, callbacks, real training.

mod common;

use common::*;
use std::collections::HashMap;
use std::process::{Command, Output};

#[test]
fn run_help_explains_each_flag() {
    let out = ftlua(&["run", "--help"], &repo());
    let help = text(&out);
    assert!(out.status.success(), "{help}");
    for flag in ["--set <KEY=VALUE>", "--device <DEVICE>", "--output-dir <DIR>", "learning_rate=3e-4"] {
        assert!(help.contains(flag), "help lacks {flag}: {help}");
    }
}

#[test]
fn unknown_set_key_is_refused_with_a_suggestion() {
    let out = ftlua(&["run", "scripts/adaptive.lua", "--set", "learnig_rate=1e-3"], &repo());
    let message = text(&out);
    assert!(!out.status.success());
    assert!(message.contains("unknown setting `learnig_rate` (did you mean `learning_rate`?)"), "{message}");
}

#[test]
fn lua_errors_name_file_and_line_with_a_traceback() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("syntax.lua", "local x = \nlocal = 3\n", "syntax.lua:2:"),
        ("runtime.lua", "local function f()\n  error('boom')\nend\nf()\n", "runtime.lua:2: boom"),
        (
            "badkey.lua",
            "local ft = require 'ftlua'\nft.trainer { batch_sise = 3 }\n",
            "unknown setting `batch_sise` (did you mean `batch_size`?)",
        ),
    ];
    for (name, source, expected) in cases {
        write_script(dir.path(), name, source);
        let out = ftlua(&["run", name], dir.path());
        let message = text(&out);
        assert!(!out.status.success(), "{name} should fail");
        assert!(message.contains(expected), "{name}: {message}");
    }
    let out = ftlua(&["run", "runtime.lua"], dir.path());
    assert!(text(&out).contains("stack traceback"), "{}", text(&out));
}

#[test]
fn stdlib_is_embedded_and_overridable_through_package_path() {
    let dir = tempfile::tempdir().unwrap();
    write_script(
        dir.path(),
        "use.lua",
        "local s = require 'ftlua.schedule'\nprint('linear' , s.linear()(50, 100, 0))\n",
    );
    let out = ftlua(&["run", "use.lua"], dir.path());
    assert!(text(&out).contains("linear\t0.5"), "embedded stdlib: {}", text(&out));

    std::fs::create_dir_all(dir.path().join("stdlib/ftlua")).unwrap();
    std::fs::write(
        dir.path().join("stdlib/ftlua/schedule.lua"),
        "return { linear = function() return function() return 42 end end }",
    )
    .unwrap();
    let out = ftlua(&["run", "use.lua"], dir.path());
    assert!(text(&out).contains("linear\t42"), "project stdlib should win: {}", text(&out));
}

#[test]
fn callback_stops_training_and_the_run_records_why() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let out = ftlua(
        &["run", "tests/scripts/stop_early.lua", "--device", "cpu", "--output-dir", out_dir.to_str().unwrap()],
        &repo(),
    );
    let message = text(&out);
    assert!(out.status.success(), "{message}");
    assert!(message.contains("stopped at step 3: test callback: enough at step 3"), "{message}");
    let log = std::fs::read_to_string(out_dir.join("metrics.jsonl")).unwrap();
    let stop: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["event"] == "stop")
        .expect("a stop record");
    assert_eq!(stop["step"], 3);
    assert_eq!(stop["reason"], "test callback: enough at step 3");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("checkpoint-3/trainer_state.json")).unwrap())
            .unwrap();
    assert_eq!(state["state"]["stop_reason"], "test callback: enough at step 3");
}

#[test]
fn short_training_run_learns_and_writes_hf_layout_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let out = ftlua(
        &["run", "tests/scripts/learns.lua", "--device", "cpu", "--output-dir", out_dir.to_str().unwrap()],
        &repo(),
    );
    let message = text(&out);
    assert!(out.status.success(), "{message}");
    let line = message.lines().find(|l| l.starts_with("first_loss=")).expect("summary line");
    let field = |name: &str| -> f64 {
        line.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{name}="))).unwrap().parse().unwrap()
    };
    assert!(field("last_loss") < 0.8 * field("first_loss"), "loss did not fall: {line}");
    let generated = message.lines().find(|l| l.starts_with("model_weights=")).expect("generation line");
    let weights_dir = generated.split_whitespace().next().unwrap().trim_start_matches("model_weights=");
    assert!(std::path::Path::new(weights_dir).join("model.safetensors").is_file(), "fit's model: {generated}");
    // Checkpoints at 20 and 40 with a limit of 1: only the newest stays, unless 20 was the best.
    for step in [40] {
        let checkpoint = out_dir.join(format!("checkpoint-{step}"));
        for file in ["model.safetensors", "config.json", "optimizer.safetensors", "trainer_state.json"] {
            assert!(checkpoint.join(file).is_file(), "{} missing", checkpoint.join(file).display());
        }
    }
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("best/config.json")).unwrap()).unwrap();
    assert_eq!(config["architectures"][0], "T5ForConditionalGeneration");
    let weights = std::fs::read(out_dir.join("best/model.safetensors")).unwrap();
    let names: Vec<String> =
        safetensors::SafeTensors::deserialize(&weights).unwrap().names().into_iter().map(str::to_string).collect();
    for name in [
        "shared.weight",
        "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
        "decoder.block.1.layer.2.DenseReluDense.wo.weight",
        "decoder.final_layer_norm.weight",
    ] {
        assert!(names.iter().any(|n| n == name), "{name} missing from {names:?}");
    }
    let records: Vec<serde_json::Value> = std::fs::read_to_string(out_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let evals: Vec<u64> =
        records.iter().filter(|r| r["event"] == "eval").map(|r| r["step"].as_u64().unwrap()).collect();
    assert_eq!(evals, [20, 40]);
    let run_info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("run.json")).unwrap()).unwrap();
    let last_eval = records.iter().rev().find(|r| r["event"] == "eval").unwrap();
    assert_eq!(
        last_eval["eval_answered"].as_f64(),
        run_info["eval_samples"].as_f64(),
        "Lua metric saw every prediction"
    );
    assert_eq!(last_eval["eval_nonempty_references"], 1.0);
    assert!(records.iter().all(|r| r["event"] != "log" || r["loss"].as_f64().unwrap().is_finite()));
}

/// Trains tests/scripts/resume.lua straight to step 8, and stopped at step 3 then resumed; the
/// two must end with the same bytes, and the callback's state must survive.
fn assert_resume_is_exact(env: &[(&str, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let (straight, resumed) = (dir.path().join("straight"), dir.path().join("resumed"));
    let script = "tests/scripts/resume.lua";
    let out = run_with_env(&["run", script, "--device", "cpu", "--output-dir", straight.to_str().unwrap()], env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("steps=8 counter=8"), "{}", text(&out));

    let stop_env: Vec<(&str, &str)> = env.iter().copied().chain([("STOP_AT", "3")]).collect();
    let out = run_with_env(&["run", script, "--device", "cpu", "--output-dir", resumed.to_str().unwrap()], &stop_env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("steps=3 counter=3"), "{}", text(&out));
    let out =
        run_with_env(&["run", script, "--device", "cpu", "--output-dir", resumed.to_str().unwrap(), "--resume"], env);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("resumed from"), "{}", text(&out));
    assert!(text(&out).contains("steps=8 counter=8"), "callback state must survive: {}", text(&out));
    assert_same_checkpoint(&straight.join("checkpoint-8"), &resumed.join("checkpoint-8"));
}

#[test]
fn stopped_and_resumed_run_ends_bit_identical_to_an_uninterrupted_one() {
    assert_resume_is_exact(&[]);
}

#[test]
fn with_augmentation_too_a_resumed_run_draws_the_same_noise() {
    assert_resume_is_exact(&[("AUGMENT", "1")]);
}

#[test]
fn augmentation_is_drawn_anew_each_epoch_and_trained_on() {
    let run = |augment: &str| {
        let dir = tempfile::tempdir().unwrap();
        let out = run_with_env(
            &["run", "tests/scripts/augment.lua", "--device", "cpu", "--output-dir", dir.path().to_str().unwrap()],
            &[("AUGMENT", augment)],
        );
        let message = text(&out);
        assert!(out.status.success(), "{message}");
        message.lines().find(|l| l.starts_with("augment ")).unwrap().to_string()
    };
    let (plain, augmented) = (run("0"), run("1"));
    assert!(plain.starts_with("augment calls=0") && plain.ends_with("tokens=1440"), "{plain}");
    // 8 samples × 3 epochs, each epoch a fresh draw; contexts cut to 10 characters: fewer tokens.
    assert!(
        augmented.starts_with("augment calls=24 redrawn=true") && augmented.ends_with("tokens=1032"),
        "{augmented}"
    );
    assert_eq!(run("1"), augmented, "the same seed draws the same noise");
}

fn summary(out: &Output) -> HashMap<String, String> {
    let message = text(out);
    assert!(out.status.success(), "{message}");
    let line = message.lines().find(|l| l.starts_with("steps=")).unwrap_or_else(|| panic!("no summary in {message}"));
    line.split_whitespace().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn a_batch_that_does_not_fit_recovers_to_the_same_training() {
    let dir = tempfile::tempdir().unwrap();
    let args = |name: &str| {
        ["run", "tests/scripts/oom.lua", "--device", "cpu", "--output-dir", dir.path().join(name).to_str().unwrap()]
            .map(String::from)
    };
    let fits = run_with_env(&args("fits").each_ref().map(String::as_str), &[("BATCH", "4"), ("ACCUM", "2")]);
    let adapts = run_with_env(
        &args("adapts").each_ref().map(String::as_str),
        &[("BATCH", "8"), ("FTLUA_INJECT_OOM", "batch>4")],
    );
    let (fits, adapts) = (summary(&fits), summary(&adapts));
    assert_eq!(adapts["ooms"], "1", "one recovery, then the smaller batch fits");
    assert_eq!(adapts["batch"], "4x2", "halved batch, doubled accumulation");
    assert_eq!((&adapts["steps"], &adapts["samples"]), (&fits["steps"], &fits["samples"]));
    let (a, b): (f64, f64) = (adapts["loss"].parse().unwrap(), fits["loss"].parse().unwrap());
    assert!((a - b).abs() < 1e-3, "final loss {a} vs {b}");
    let log = std::fs::read_to_string(dir.path().join("adapts/metrics.jsonl")).unwrap();
    assert!(log.lines().any(|l| l.contains("\"event\":\"oom\"") && l.contains("\"to\":[4,2]")), "{log}");
}

#[test]
fn twenty_recoveries_in_a_row_leave_memory_at_its_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let out = run_with_env(
        &["run", "tests/scripts/oom.lua", "--device", "cpu", "--output-dir", out_dir.to_str().unwrap()],
        &[("BATCH", "8"), ("POLICY", "retry_same"), ("FTLUA_INJECT_OOM", "count:20")],
    );
    let s = summary(&out);
    assert_eq!((s["ooms"].as_str(), s["steps"].as_str(), s["batch"].as_str()), ("20", "6", "8x1"));
    let rss: Vec<f64> = text(&out)
        .lines()
        .find_map(|l| l.strip_prefix("rss="))
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    // Single readings wander: the allocator keeps freed memory around, the first recoveries can come
    // before the run reached its steady state (seen under a loaded CI machine: 444 MB, then 507-523 MB),
    // and one late reading 3% above the rest was seen too. A leak of what a failed attempt holds (tens of
    // MB here) would instead lift every later reading, twenty times over: so the typical reading of the
    // last five must stay within the range of the first ten.
    let mut last = rss[15..].to_vec();
    last.sort_by(f64::total_cmp);
    let (baseline, typical_late) = (rss[..10].iter().copied().fold(0.0, f64::max), last[2]);
    assert!(typical_late <= baseline * 1.02, "resident memory climbed over 20 recoveries: {rss:?}");
}

#[test]
fn out_of_memory_in_evaluation_shrinks_only_the_eval_batch() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let out = run_with_env(
        &["run", "tests/scripts/oom.lua", "--device", "cpu", "--output-dir", out_dir.to_str().unwrap()],
        &[("BATCH", "8"), ("FTLUA_INJECT_OOM", "eval>2")],
    );
    let s = summary(&out);
    assert_eq!(s["batch"], "8x1", "the training batch is untouched");
    assert_eq!(s["eval_batch"], "2", "8 -> 4 -> 2");
}

#[test]
fn batch_search_finds_the_largest_batch_that_fits_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let out = run_with_env(
        &["run", "tests/scripts/oom.lua", "--device", "cpu", "--output-dir", out_dir.to_str().unwrap()],
        &[("BATCH", "2"), ("ACCUM", "8"), ("FIND", "1"), ("FTLUA_INJECT_OOM", "batch>6")],
    );
    let s = summary(&out);
    // 2 and 4 fit, 8 does not; bisection finds 6; 4 is the largest divisor of the effective 16.
    assert_eq!((s["batch"].as_str(), s["ooms"].as_str()), ("4x4", "0"), "{}", text(&out));
    let log = std::fs::read_to_string(out_dir.join("metrics.jsonl")).unwrap();
    let search: serde_json::Value = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|r| r["event"] == "batch_search")
        .unwrap();
    assert_eq!(search["probes"], serde_json::json!([[2, true], [4, true], [8, false], [6, true], [7, false]]));
    assert_eq!(search["largest"], 6);
}

#[test]
fn out_of_memory_inside_the_optimizer_update_resumes_it() {
    let dir = tempfile::tempdir().unwrap();
    let args = |name: &str| {
        ["run", "tests/scripts/oom.lua", "--device", "cpu", "--output-dir", dir.path().join(name).to_str().unwrap()]
            .map(String::from)
    };
    let clean =
        summary(&run_with_env(&args("clean").each_ref().map(String::as_str), &[("BATCH", "4"), ("ACCUM", "2")]));
    let hit = run_with_env(
        &args("hit").each_ref().map(String::as_str),
        &[("BATCH", "4"), ("ACCUM", "2"), ("FTLUA_INJECT_OOM", "optimizer:3")],
    );
    let log = std::fs::read_to_string(dir.path().join("hit/metrics.jsonl")).unwrap();
    assert!(log.lines().any(|l| l.contains("\"phase\":\"optimizer\"") && l.contains("\"step\":3")), "{log}");
    assert_eq!(summary(&hit)["loss"], clean["loss"], "the resumed update is the same update");
}

#[test]
fn at_batch_one_prompts_are_shortened_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, shrink: bool| {
        let out_dir = dir.path().join(name);
        let mut env = vec![("BATCH", "1"), ("ACCUM", "2"), ("FTLUA_INJECT_OOM", "source>200")];
        if shrink {
            env.push(("SHRINK", "1"));
        }
        (
            run_with_env(
                &["run", "tests/scripts/oom.lua", "--device", "cpu", "--output-dir", out_dir.to_str().unwrap()],
                &env,
            ),
            out_dir,
        )
    };
    let (refused, _) = run("refused", false);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("out of memory at the minimum batch of 1"), "{}", text(&refused));
    assert!(text(&refused).contains("shorter max_source_len"), "the error suggests what to try: {}", text(&refused));

    let (allowed, out_dir) = run("allowed", true);
    let s = summary(&allowed);
    assert_eq!(s["steps"], "6");
    let log = std::fs::read_to_string(out_dir.join("metrics.jsonl")).unwrap();
    let caps: Vec<u64> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["event"] == "max_source_len")
        .map(|r| r["to"].as_u64().unwrap())
        .collect();
    // 3/4 of the longest failing prompt each time, until prompts fit under the injected 200.
    assert!(caps.windows(2).all(|w| w[1] < w[0]) && caps.last().is_some_and(|&c| c <= 200), "{caps:?}");
}

#[test]
fn a_batch_chosen_after_out_of_memory_survives_resume() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let args = ["run", "tests/scripts/resume.lua", "--device", "cpu", "--output-dir", out_dir.to_str().unwrap()];
    let first = run_with_env(&args, &[("STOP_AT", "3"), ("FTLUA_INJECT_OOM", "batch>2")]);
    assert!(text(&first).contains("steps=3 counter=3 batch=2x4"), "{}", text(&first));
    let resumed = run_with_env(&[&args[..], &["--resume"]].concat(), &[]);
    assert!(text(&resumed).contains("steps=8 counter=8 batch=2x4"), "{}", text(&resumed));
}

#[test]
fn a_batch_over_max_memory_fails_for_real_and_the_run_matches_one_that_fits() {
    let dir = tempfile::tempdir().unwrap();
    let args = |name: &str| {
        ["run", "tests/scripts/oom.lua", "--device", "cpu", "--output-dir", dir.path().join(name).to_str().unwrap()]
            .map(String::from)
    };
    let capped =
        run_with_env(&args("capped").each_ref().map(String::as_str), &[("BATCH", "32"), ("MAX_MEMORY", "600MiB")]);
    assert!(
        text(&capped).contains("DefaultCPUAllocator: can't allocate memory"),
        "a real allocator failure: {}",
        text(&capped)
    );
    let capped = summary(&capped);
    let (batch, accum) = capped["batch"]
        .split_once('x')
        .map(|(b, a)| (b.parse::<usize>().unwrap(), a.parse::<usize>().unwrap()))
        .unwrap();
    assert!(batch < 32 && batch * accum == 32, "smaller batch, same effective batch: {batch}x{accum}");
    let reference = summary(&run_with_env(
        &args("reference").each_ref().map(String::as_str),
        &[("BATCH", &batch.to_string()), ("ACCUM", &accum.to_string()), ("MAX_MEMORY", "64GiB")],
    ));
    assert_eq!((&capped["steps"], &capped["samples"]), (&reference["steps"], &reference["samples"]));
    let (a, b): (f64, f64) = (capped["loss"].parse().unwrap(), reference["loss"].parse().unwrap());
    assert!((a - b).abs() < 1e-3, "final loss {a} vs {b}");
}

#[test]
fn ctrl_c_saves_the_step_and_the_run_resumes_from_it() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ftlua"))
        .args([
            "run",
            "tests/scripts/resume.lua",
            "--device",
            "cpu",
            "--set",
            "max_steps=100000",
            "--set",
            "log_every=1",
        ])
        .args(["--output-dir", out_dir.to_str().unwrap()])
        .current_dir(repo())
        .env_remove("STOP_AT")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("step 2/") {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "ftlua ended early: {seen}");
        seen += &line;
    }
    // SAFETY: signals our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted run exits non-zero");
    assert!(rest.contains("interrupted at step") && rest.contains("run the same command with --resume"), "{rest}");
    let saved = checkpoint_steps(&out_dir);
    let step = *saved.last().expect("a checkpoint was saved");
    assert!(step >= 2, "{saved:?}");
    let out = run_with_env(
        &[
            "run",
            "tests/scripts/resume.lua",
            "--device",
            "cpu",
            "--set",
            &format!("max_steps={}", step + 2),
            "--output-dir",
            out_dir.to_str().unwrap(),
            "--resume",
        ],
        &[],
    );
    assert!(
        text(&out).contains(&format!("resumed from {}", out_dir.join(format!("checkpoint-{step}")).display())),
        "{}",
        text(&out)
    );
    assert!(text(&out).contains(&format!("steps={}", step + 2)), "{}", text(&out));
}

#[test]
fn training_starts_from_an_hf_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let out = ftlua(
        &["run", "tests/scripts/from_pretrained.lua", "--device", "cpu", "--output-dir", dir.path().to_str().unwrap()],
        &repo(),
    );
    let message = text(&out);
    assert!(out.status.success(), "{message}");
    assert!(message.contains("loaded d_model=32 parameters=53696"), "the HF fixture's size: {message}");
    assert!(message.contains("loaded weights from tests/golden/t5/relu"), "{message}");
    assert!(message.contains("steps=2"), "{message}");
    let missing = ftlua(&["run", "missing.lua"], &repo());
    assert!(text(&missing).contains("script not found: missing.lua"), "{}", text(&missing));
}

#[test]
fn a_terminal_gets_a_progress_bar_and_a_pipe_gets_log_lines() {
    let dir = tempfile::tempdir().unwrap();
    let args = |name: &str| -> Vec<String> {
        ["run", "tests/scripts/resume.lua", "--device", "cpu", "--set", "log_every=2", "--output-dir"]
            .map(String::from)
            .into_iter()
            .chain([dir.path().join(name).display().to_string()])
            .collect()
    };
    let piped = Command::new(env!("CARGO_BIN_EXE_ftlua"))
        .args(args("piped"))
        .current_dir(repo())
        .env_remove("STOP_AT")
        .output()
        .unwrap();
    let piped = text(&piped);
    assert!(piped.contains("step 4/8 | epoch") && !piped.contains("ETA"), "{piped}");

    // `script` runs the command on a pseudo-terminal, as a user's shell would.
    let command_line = format!("{} {}", env!("CARGO_BIN_EXE_ftlua"), args("terminal").join(" "));
    let on_terminal = Command::new("script")
        .args(["-qfec", &command_line, "/dev/null"])
        .current_dir(repo())
        .env_remove("CI")
        .env_remove("STOP_AT")
        .output()
        .expect("running script (util-linux)");
    let shown = text(&on_terminal);
    assert!(on_terminal.status.success(), "{shown}");
    assert!(
        shown.contains("step 8/8 [") && shown.contains("ETA") && shown.contains("samples/s | batch 4×2"),
        "{shown}"
    );
    assert!(!shown.contains("step 4/8 | epoch"), "the bar replaces the periodic log lines: {shown}");
}

#[test]
fn report_compares_runs_in_a_table_and_plots_them() {
    let dir = tempfile::tempdir().unwrap();
    let runs: Vec<_> = ["2e-3", "5e-4"].iter().map(|lr| dir.path().join(format!("lr{lr}"))).collect();
    for (run, lr) in runs.iter().zip(["2e-3", "5e-4"]) {
        let lr = format!("learning_rate={lr}");
        let out = run_with_env(
            &["run", "tests/scripts/resume.lua", "--device", "cpu", "--set", &lr, "--set", "eval_every=4"]
                .into_iter()
                .chain(["--output-dir", run.to_str().unwrap()])
                .collect::<Vec<_>>(),
            &[],
        );
        assert!(out.status.success(), "{}", text(&out));
    }
    let png = dir.path().join("curves.png");
    let out = ftlua(
        &["report", runs[0].to_str().unwrap(), runs[1].to_str().unwrap(), "--png", png.to_str().unwrap()],
        &repo(),
    );
    let report = text(&out);
    assert!(out.status.success(), "{report}");
    let header = report.lines().next().unwrap();
    assert!(
        header.starts_with("run") && header.contains("learning_rate") && !header.contains("batch_size"),
        "{report}"
    );
    assert!(report.contains("2.00e-3") && report.contains("5.00e-4"), "{report}");
    assert!(
        report.contains("eval_loss") && report.contains("@ 8") && report.contains("reached max_steps = 8"),
        "{report}"
    );
    assert_eq!(report.matches("diagnosis: ").count(), 2, "{report}");

    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let (width, height) =
        (u32::from_be_bytes(bytes[16..20].try_into().unwrap()), u32::from_be_bytes(bytes[20..24].try_into().unwrap()));
    assert_eq!((width, height), (1600, 1000));

    let missing = ftlua(&["report", dir.path().to_str().unwrap()], &repo());
    assert!(text(&missing).contains("is not an ftlua run directory (no run.json)"), "{}", text(&missing));
}

#[test]
fn loading_a_checkpoint_peaks_under_1_3_times_its_weights() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("t5-small-sized");
    let env = |mode: &'static str| [("DIR", checkpoint.to_str().unwrap().to_string()), ("MODE", mode.to_string())];
    let run = |mode: &'static str| {
        let mut command = command(&["-q", "run", "tests/scripts/load_memory.lua"], &[]);
        command.envs(env(mode));
        let out = command.output().unwrap();
        assert!(out.status.success(), "{}", text(&out));
        text(&out)
    };
    run("save");
    let line = run("load");
    let field = |name: &str| -> f64 {
        line.split_whitespace().find_map(|kv| kv.strip_prefix(&format!("{name}="))).unwrap().trim().parse().unwrap()
    };
    let (grown, weights) = (field("peak") - field("before"), field("weights"));
    eprintln!("loading {weights:.0} bytes of weights raised the peak by {grown:.0} bytes ({:.3}×)", grown / weights);
    assert!(weights > 1.5e8, "the checkpoint is t5-small-sized: {line}");
    assert!(grown < 1.3 * weights, "peak grew by {:.2}× the weights: {line}", grown / weights);
}

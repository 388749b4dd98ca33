//! Faults a long run meets: the process killed at any instant, a callback with a bug, a damaged
//! checkpoint, a full disk, files that are missing or in the way. Each must leave a run that
//! resumes to the same weights as if nothing had happened, or fail before any work with a message
//! that says what is wrong.

mod common;

use common::*;
use rand::{Rng, SeedableRng};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SCRIPT: &str = "tests/scripts/resume.lua";

fn run_args<'a>(out_dir: &'a str, max_steps: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run", SCRIPT, "--device", "cpu", "--output-dir", out_dir, "--set", max_steps];
    args.extend_from_slice(extra);
    args
}

/// Where the killer strikes, counted in the run's own steps so that no launch gets further than
/// three steps on any machine: at a random instant inside the first or second step after the
/// first checkpoint (`fraction` of a step's duration, measured in this launch), or while the n-th
/// checkpoint of this launch is being written (right after the trainer announces it).
#[derive(Debug, Clone, Copy)]
enum KillAt {
    InStep { after_saves: usize, fraction: f64 },
    WhileSaving(usize),
}

/// Launches a resumed run and SIGKILLs it at `at`. Returns its stderr up to the kill and
/// whether it had finished on its own first.
fn launch_and_kill(out_dir: &Path, at: KillAt) -> (String, bool) {
    let out = out_dir.to_str().unwrap();
    let args = run_args(out, "max_steps=40", &["--set", "save_every=1", "--resume", "-v"]);
    let mut child = command(&args, &[]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let (lines_tx, lines) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines_tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let mut wait_for = |pattern: &str, count: usize| -> Option<Instant> {
        let mut found = None;
        for _ in 0..count {
            found = None;
            while let Ok((at, line)) = lines.recv() {
                seen += &line;
                seen.push('\n');
                if line.contains(pattern) {
                    found = Some(at);
                    break;
                }
            }
        }
        found
    };
    match at {
        KillAt::InStep { after_saves, fraction } => {
            if let (Some(start), Some(first_save)) = (wait_for("INFO model:", 1), wait_for(" saving ", 1)) {
                wait_for(" saving ", after_saves);
                std::thread::sleep((first_save - start).mul_f64(fraction));
            }
        }
        KillAt::WhileSaving(n) => {
            wait_for(" saving ", n);
        }
    }
    // SAFETY: signals our own child process, which has not been waited for yet.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let finished = child.wait().unwrap().success();
    reader.join().unwrap();
    seen.extend(lines.try_iter().map(|(_, l)| l + "\n"));
    (seen, finished)
}

#[test]
fn killed_a_dozen_times_in_training_and_in_saves_the_resumed_run_equals_an_uninterrupted_one() {
    let dir = tempfile::tempdir().unwrap();
    let (straight, killed) = (dir.path().join("straight"), dir.path().join("killed"));
    let out = run_with_env(&run_args(straight.to_str().unwrap(), "max_steps=40", &["--set", "save_every=1"]), &[]);
    assert!(out.status.success(), "{}", text(&out));

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut interrupted_saves = 0;
    let mut resumed_from = Vec::new();
    for kill in 0..12 {
        let at = match kill % 2 {
            0 => KillAt::InStep { after_saves: rng.gen_range(0..2), fraction: rng.gen_range(0.0..1.0) },
            _ => KillAt::WhileSaving(rng.gen_range(1..4)),
        };
        let (log, finished) = launch_and_kill(&killed, at);
        assert!(!finished, "kill {kill} ({at:?}) came after the run had finished; the test needs a longer run");
        assert!(!log.contains("cannot resume"), "kill {kill}: a checkpoint was left damaged:\n{log}");
        if let Some(step) = log.split("resumed from ").nth(1).and_then(|rest| rest.split(" at step ").nth(1)) {
            resumed_from.push(step.split_whitespace().next().unwrap().parse::<u64>().unwrap());
        }
        let tmp_dirs = std::fs::read_dir(&killed)
            .map(|entries| {
                entries.filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp")).count()
            })
            .unwrap_or(0);
        interrupted_saves += tmp_dirs;
    }
    eprintln!("resumed from steps {resumed_from:?}; {interrupted_saves} kills landed inside a save");
    assert!(resumed_from.windows(2).all(|w| w[0] <= w[1]), "resumes went backwards: {resumed_from:?}");
    assert!(interrupted_saves >= 1, "no kill landed inside a save; the test did not test that");

    let out =
        run_with_env(&run_args(killed.to_str().unwrap(), "max_steps=40", &["--set", "save_every=1", "--resume"]), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("steps=40 counter=40"), "callback state must survive every kill: {}", text(&out));
    assert_same_checkpoint(&straight.join("checkpoint-40"), &killed.join("checkpoint-40"));
}

#[test]
fn a_bug_in_a_callback_saves_the_last_whole_step_and_the_fixed_run_resumes_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (straight, failed) = (dir.path().join("straight"), dir.path().join("failed"));
    let out = run_with_env(&run_args(straight.to_str().unwrap(), "max_steps=8", &[]), &[]);
    assert!(out.status.success(), "{}", text(&out));

    let out = run_with_env(&run_args(failed.to_str().unwrap(), "max_steps=8", &[]), &[("FAIL_AT", "5")]);
    let message = text(&out);
    assert!(!out.status.success());
    assert!(message.contains("resume.lua:") && message.contains("a bug in a callback"), "{message}");
    assert!(message.contains("stack traceback"), "{message}");
    assert!(message.contains("a handler failed after step 4; saved"), "{message}");
    assert_eq!(checkpoint_steps(&failed), [4]);

    let out = run_with_env(&run_args(failed.to_str().unwrap(), "max_steps=8", &["--resume"]), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("steps=8 counter=8"), "{}", text(&out));
    assert_same_checkpoint(&straight.join("checkpoint-8"), &failed.join("checkpoint-8"));
}

/// Runs to step 6 saving every 2 steps, then damages what `damage` names in checkpoint-6.
fn run_and_damage(out_dir: &Path, damage: impl Fn(&Path)) {
    let out = run_with_env(&run_args(out_dir.to_str().unwrap(), "max_steps=6", &["--set", "save_every=2"]), &[]);
    assert!(out.status.success(), "{}", text(&out));
    damage(&out_dir.join("checkpoint-6"));
}

fn truncate(path: &Path, keep: u64) {
    std::fs::OpenOptions::new().write(true).open(path).unwrap().set_len(keep).unwrap();
}

#[test]
fn a_damaged_checkpoint_is_refused_by_name_and_resume_latest_falls_back_to_the_one_before() {
    let damages: [(&str, fn(&Path), &str); 4] = [
        ("truncated weights", |ckpt| truncate(&ckpt.join("model.safetensors"), 100_000), "model.safetensors: "),
        (
            "truncated optimizer state",
            |ckpt| truncate(&ckpt.join("optimizer.safetensors"), 100_000),
            "optimizer.safetensors: ",
        ),
        ("garbled trainer state", |ckpt| truncate(&ckpt.join("trainer_state.json"), 40), "trainer_state.json"),
        (
            "missing callbacks state",
            |ckpt| std::fs::remove_file(ckpt.join("callbacks.json")).unwrap(),
            "callbacks.json",
        ),
    ];
    for (what, damage, named) in damages {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("run");
        run_and_damage(&out_dir, damage);
        let damaged = out_dir.join("checkpoint-6");

        let out = run_with_env(
            &run_args(out_dir.to_str().unwrap(), "max_steps=8", &["--set", &format!("resume={}", damaged.display())]),
            &[],
        );
        let message = text(&out);
        assert!(!out.status.success(), "{what}: an explicitly named damaged checkpoint must be refused");
        assert!(message.contains(&format!("checkpoint {}", damaged.display())), "{what}: {message}");
        assert!(message.contains(named), "{what}: expected {named:?} in {message}");

        let out = run_with_env(&run_args(out_dir.to_str().unwrap(), "max_steps=8", &["--resume"]), &[]);
        let message = text(&out);
        assert!(out.status.success(), "{what}: {message}");
        assert!(message.contains(&format!("cannot resume from {}", damaged.display())), "{what}: {message}");
        assert!(message.contains("resumed from") && message.contains("checkpoint-4 at step 4"), "{what}: {message}");
    }
}

#[test]
fn a_full_disk_while_saving_fails_the_save_and_keeps_the_previous_checkpoint() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let (straight, full) = (dir.path().join("straight"), dir.path().join("full"));
    let out = run_with_env(&run_args(straight.to_str().unwrap(), "max_steps=8", &[]), &[]);
    assert!(out.status.success(), "{}", text(&out));
    let out = run_with_env(&run_args(full.to_str().unwrap(), "max_steps=8", &[]), &[("STOP_AT", "4")]);
    assert!(out.status.success(), "{}", text(&out));
    let model_bytes = std::fs::metadata(full.join("checkpoint-4/model.safetensors")).unwrap().len();

    // The kernel refuses writes past this size (EFBIG), as a full disk refuses them (ENOSPC):
    // model.safetensors fits, optimizer.safetensors (twice its size) does not.
    let limit = model_bytes * 3 / 2;
    let mut cmd =
        command(&run_args(full.to_str().unwrap(), "max_steps=8", &["--set", "save_every=2", "--resume"]), &[]);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let rlimit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
            match libc::setrlimit(libc::RLIMIT_FSIZE, &rlimit) {
                0 => Ok(()),
                _ => Err(std::io::Error::last_os_error()),
            }
        });
    }
    let out = cmd.output().unwrap();
    let message = text(&out);
    assert!(!out.status.success(), "{message}");
    assert!(message.contains("writing optimizer.safetensors") && message.contains("File too large"), "{message}");
    assert!(message.contains("anything saved before is intact"), "{message}");
    assert_eq!(checkpoint_steps(&full), [4], "the failed save left no checkpoint behind");
    assert!(!full.join(".checkpoint-6.tmp").exists(), "the failed save's partial files were removed");

    let out = run_with_env(&run_args(full.to_str().unwrap(), "max_steps=8", &["--resume"]), &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_same_checkpoint(&straight.join("checkpoint-8"), &full.join("checkpoint-8"));
}

#[test]
fn missing_or_blocked_files_are_refused_with_their_name() {
    let dir = tempfile::tempdir().unwrap();
    let in_the_way = dir.path().join("a-file");
    std::fs::write(&in_the_way, "not a directory").unwrap();
    let blocked_output = in_the_way.join("run");
    let missing_checkpoint = dir.path().join("no-such-checkpoint");
    let no_data = write_script(dir.path(), "no_data.lua", "require('ftlua').data.qa('data/missing.jsonl')\n");
    let fresh_run = dir.path().join("run");
    let resume_missing = format!("resume={}", missing_checkpoint.display());
    let no_model = write_script(dir.path(), "no_model.lua", "require('ftlua').model.load('models/missing')\n");
    let cases: [(Vec<&str>, String); 4] = [
        (
            run_args(blocked_output.to_str().unwrap(), "max_steps=2", &[]),
            format!("creating {}", blocked_output.display()),
        ),
        (
            run_args(fresh_run.to_str().unwrap(), "max_steps=2", &["--set", &resume_missing]),
            format!("checkpoint {}: no such directory", missing_checkpoint.display()),
        ),
        (vec!["run", no_data.to_str().unwrap()], "data/missing.jsonl".into()),
        (vec!["run", no_model.to_str().unwrap()], "models/missing".into()),
    ];
    for (args, expected) in cases {
        let out = run_with_env(&args, &[]);
        let message = text(&out);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(message.contains(&expected), "{args:?}: expected {expected:?} in {message}");
    }
}

#[test]
fn a_second_ctrl_c_ends_the_run_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("run");
    let args = run_args(out_dir.to_str().unwrap(), "max_steps=100000", &["--set", "log_every=1"]);
    // Each step ends with two seconds in a callback, so both signals land before the run could
    // finish the step and save on its own.
    let mut child =
        command(&args, &[("SLOW_STEPS", "2")]).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("step 1/") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "ftlua ended early");
    }
    for _ in 0..2 {
        // SAFETY: signals our own child process, which has not been waited for yet.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        // Two signals sent together merge into one pending signal; a person presses twice.
        std::thread::sleep(Duration::from_millis(100));
    }
    std::io::copy(&mut stderr, &mut std::io::sink()).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "the second signal exits with 128 + SIGINT at once");
}

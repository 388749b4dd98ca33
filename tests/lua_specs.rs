//! Runs every Lua spec file (tests/lua/*_spec.lua) with the ftlua binary; each must exit 0.

use std::process::Command;

#[test]
fn lua_specs_pass() {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut specs: Vec<_> = std::fs::read_dir(format!("{root}/tests/lua"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("_spec.lua"))
        .collect();
    specs.sort();
    assert!(!specs.is_empty(), "no spec files found");
    let mut failures = Vec::new();
    for spec in &specs {
        let out = Command::new(env!("CARGO_BIN_EXE_ftlua")).arg("run").arg(spec).current_dir(root).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            println!("{}", text.trim());
        } else {
            failures.push(format!("{}:\n{text}", spec.display()));
        }
    }
    assert!(failures.is_empty(), "{} of {} spec files failed:\n{}", failures.len(), specs.len(), failures.join("\n"));
}

//! Every public function of the Lua API has a LuaLS stub (stdlib/meta/) and is called by a test.

use std::collections::BTreeSet;
use std::path::Path;

fn read_dir_text(dir: &Path, ext: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(read_dir_text(&path, ext));
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
    out
}

/// `function a.b(` and `function a:b(` declarations: (qualifier, name).
fn declared_functions(source: &str) -> Vec<(String, String)> {
    source
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("function "))
        .filter_map(|rest| {
            let signature = rest.split('(').next()?;
            let split = signature.rfind(['.', ':'])?;
            Some((signature[..split].to_string(), signature[split + 1..].to_string()))
        })
        .collect()
}

#[test]
fn every_stdlib_function_has_a_stub() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let stubs: BTreeSet<String> = read_dir_text(&root.join("stdlib/meta"), "lua")
        .iter()
        .flat_map(|(_, src)| declared_functions(src))
        .map(|(qualifier, name)| format!("{qualifier}.{name}"))
        .collect();
    let mut missing = Vec::new();
    for (path, src) in read_dir_text(&root.join("stdlib/ftlua"), "lua") {
        let module = Path::new(&path).file_stem().unwrap().to_string_lossy().into_owned();
        for (qualifier, name) in declared_functions(&src) {
            // Public functions are fields of the module table `M`; methods of returned callback
            // tables (cb:on_eval_end, ...) follow the callback protocol, documented once.
            if qualifier == "M" && !stubs.contains(&format!("{module}.{name}")) {
                missing.push(format!("{module}.{name} ({path})"));
            }
        }
    }
    assert!(missing.is_empty(), "functions without a stub in stdlib/meta: {missing:?}");
}

#[test]
fn every_stubbed_function_is_called_by_a_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tests: String = ["tests", "examples"]
        .iter()
        .flat_map(|d| read_dir_text(&root.join(d), "lua").into_iter().chain(read_dir_text(&root.join(d), "rs")))
        .map(|(_, src)| src)
        .collect::<Vec<_>>()
        .join("\n");
    let mut untested = Vec::new();
    for (path, src) in read_dir_text(&root.join("stdlib/meta"), "lua") {
        for (qualifier, name) in declared_functions(&src) {
            let called = [format!(".{name}("), format!(":{name}("), format!(".{name} {{"), format!(".{name} \"")]
                .iter()
                .any(|pattern| tests.contains(pattern.as_str()));
            if !called {
                untested.push(format!("{qualifier}.{name} ({path})"));
            }
        }
    }
    assert!(untested.is_empty(), "stubbed functions no test calls: {untested:?}");
}

//! `ftlua doc [MODULE]`: the Lua API, read from the LuaLS stubs in stdlib/meta/ (embedded), so
//! the help and the editor completion come from one source.

use std::collections::BTreeMap;
use std::fmt::Write as _;

const STUBS: [&str; 2] = [include_str!("../stdlib/meta/ftlua.lua"), include_str!("../stdlib/meta/stdlib.lua")];

/// One documented function: `module.name(params)` or `Class:name(params)`, with its comment.
#[derive(Debug, PartialEq)]
pub struct Entry {
    pub owner: String,
    pub signature: String,
    pub description: Vec<String>,
    pub params: Vec<(String, String)>,
    pub returns: Vec<String>,
}

/// Every stubbed function, grouped by the module or class it belongs to.
pub fn entries(sources: &[&str]) -> BTreeMap<String, Vec<Entry>> {
    let mut groups: BTreeMap<String, Vec<Entry>> = BTreeMap::new();
    for source in sources {
        let mut comment: Vec<&str> = Vec::new();
        for line in source.lines() {
            let line = line.trim();
            if let Some(text) = line.strip_prefix("---") {
                comment.push(text.trim());
                continue;
            }
            if let Some(signature) = line.strip_prefix("function ").and_then(|s| s.strip_suffix(" end")) {
                let owner = signature.split(['.', ':']).next().unwrap_or_default().to_string();
                groups.entry(owner.clone()).or_default().push(entry(owner, signature, &comment));
            }
            comment.clear();
        }
    }
    groups
}

fn entry(owner: String, signature: &str, comment: &[&str]) -> Entry {
    let mut e = Entry { owner, signature: signature.to_string(), description: vec![], params: vec![], returns: vec![] };
    for line in comment {
        if let Some(rest) = line.strip_prefix("@param ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            e.params.push((name.to_string(), kind.to_string()));
        } else if let Some(rest) = line.strip_prefix("@return ") {
            e.returns.push(rest.to_string());
        } else if !line.starts_with('@') {
            e.description.push(line.to_string());
        }
    }
    e
}

/// The text `ftlua doc` prints: the list of modules, or one module's functions.
pub fn render(module: Option<&str>) -> Result<String, String> {
    let groups = entries(&STUBS);
    let mut out = String::new();
    let Some(module) = module else {
        out += "Lua API modules and classes (ftlua doc NAME for one):\n";
        for (owner, functions) in &groups {
            let names: Vec<&str> =
                functions.iter().map(|f| f.signature[owner.len() + 1..].split('(').next().unwrap_or("")).collect();
            let _ = writeln!(out, "  {owner:<12} {}", names.join(", "));
        }
        return Ok(out);
    };
    let key = module.trim_start_matches("ftlua.");
    let Some((owner, functions)) = groups.iter().find(|(owner, _)| owner.eq_ignore_ascii_case(key)) else {
        let known: Vec<&str> = groups.keys().map(String::as_str).collect();
        return Err(format!("no module or class `{module}` in the Lua API; known: {}", known.join(", ")));
    };
    let _ = writeln!(out, "{owner}");
    for f in functions {
        let _ = writeln!(out, "\n  {}", f.signature);
        for line in &f.description {
            let _ = writeln!(out, "      {line}");
        }
        for (name, kind) in &f.params {
            let _ = writeln!(out, "      {name}: {kind}");
        }
        for r in &f.returns {
            let _ = writeln!(out, "      returns {r}");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_functions_with_their_comments() {
        let stub = "---@class m\nlocal m = {}\n--- Does a thing.\n---@param opts? {k?: integer} options\n---@return number\nfunction m.go(opts) end\n";
        let groups = entries(&[stub]);
        let go = &groups["m"][0];
        assert_eq!(go.signature, "m.go(opts)");
        assert_eq!(go.description, ["Does a thing."]);
        assert_eq!(go.params, [("opts?".to_string(), "{k?: integer} options".to_string())]);
        assert_eq!(go.returns, ["number"]);
    }

    #[test]
    fn every_stdlib_module_is_documented() {
        let groups = entries(&STUBS);
        for module in
            ["data", "Dataset", "model", "Trainer", "schedule", "callbacks", "oom", "tune", "hardware", "augment"]
        {
            assert!(groups.contains_key(module), "{module} missing from ftlua doc");
        }
        assert!(render(Some("nonsense")).unwrap_err().contains("known: "));
    }
}

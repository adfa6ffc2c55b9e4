//! The protocol crate's modules import one another in one direction only: no import circle,
//! and a lower layer never imports a higher one. Read from the source, so a change that adds a
//! circle fails here, not in a reviewer's head.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The top-level modules, lowest layer first. A module may use only modules of a lower rank.
const TOP_LEVEL_RANKS: &[(&str, u8)] = &[
    ("status", 0),
    ("display", 0),
    ("control", 0),
    ("ctaphid", 0),
    ("cbor", 1),
    ("cose", 2),
    ("wire", 3),
    ("env", 4),
    ("hybrid", 4),
    ("origin", 5),
    ("software_key", 5),
    ("testing", 6),
    ("ctap2", 7),
    ("ctap1", 8),
];

/// One non-test module of the crate: its path (`ctap2::pin::token`) and code (comments and
/// the inline test module removed).
struct Module {
    path: String,
    code: String,
}

fn module_path(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|last| last == "mod" || last == "lib")
    {
        parts.pop();
    }
    parts.join("::")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The names of the child modules that `code` declares under `#[cfg(test)]`.
fn test_only_children(code: &str) -> Vec<String> {
    let lines: Vec<&str> = code.lines().map(str::trim).collect();
    lines
        .windows(2)
        .filter(|pair| pair[0] == "#[cfg(test)]")
        .filter_map(|pair| {
            let declaration = pair[1]
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub ");
            declaration
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'))
                .map(str::to_owned)
        })
        .collect()
}

/// The code without comments and without the inline `#[cfg(test)] mod tests { .. }`, which by
/// this crate's convention ends the file.
fn production_code(code: &str) -> String {
    let code = match code.find("#[cfg(test)]\nmod tests {") {
        Some(at) => &code[..at],
        None => code,
    };
    code.lines()
        .filter(|line| !line.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn modules() -> Vec<Module> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let sources: Vec<(String, String)> = files
        .iter()
        .map(|file| (module_path(&src, file), fs::read_to_string(file).unwrap()))
        .collect();
    let mut test_only: BTreeSet<String> = BTreeSet::new();
    for (path, code) in &sources {
        for child in test_only_children(code) {
            test_only.insert(if path.is_empty() {
                child
            } else {
                format!("{path}::{child}")
            });
        }
    }
    sources
        .into_iter()
        .filter(|(path, _)| {
            !test_only
                .iter()
                .any(|t| path == t || path.starts_with(&format!("{t}::")))
        })
        .map(|(path, code)| Module {
            code: production_code(&code),
            path,
        })
        .collect()
}

/// The modules `module` names through `crate::` or `super::` paths, each resolved to the
/// longest known module path it starts with.
fn imports(module: &Module, known: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut add = |segments: Vec<&str>| {
        for len in (1..=segments.len()).rev() {
            let candidate = segments[..len].join("::");
            if known.contains(&candidate) {
                if candidate != module.path {
                    found.insert(candidate);
                }
                return;
            }
        }
    };
    let code = &module.code;
    let is_path_char = |c: char| c.is_alphanumeric() || c == '_' || c == ':';
    for (at, _) in code.match_indices("crate::") {
        let rest: String = code[at + "crate::".len()..]
            .chars()
            .take_while(|&c| is_path_char(c))
            .collect();
        add(rest.split("::").filter(|s| !s.is_empty()).collect());
    }
    for (at, _) in code.match_indices("super::") {
        if at > 0 && is_path_char(code[..at].chars().last().unwrap()) {
            continue;
        }
        let rest: String = code[at..]
            .chars()
            .take_while(|&c| is_path_char(c))
            .collect();
        let mut base: Vec<&str> = module.path.split("::").collect();
        let mut segments: Vec<&str> = rest.split("::").filter(|s| !s.is_empty()).collect();
        // In `a/b.rs` (module a::b), `super` is `a`.
        while segments.first() == Some(&"super") {
            segments.remove(0);
            base.pop();
        }
        add(base.into_iter().chain(segments).collect());
    }
    // A child module named by its own name (`hybrid_policy::admit`, `pub use pin::Token`):
    // declaring a child is not an import, using it is.
    let prefix = if module.path.is_empty() {
        String::new()
    } else {
        format!("{}::", module.path)
    };
    for child in known.iter().filter_map(|k| k.strip_prefix(&prefix)) {
        if child.contains("::") || child.is_empty() {
            continue;
        }
        let named = code.match_indices(&format!("{child}::")).any(|(at, _)| {
            let before = code[..at].chars().last();
            !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
                || code[..at].ends_with("self::")
        });
        if named {
            found.insert(format!("{prefix}{child}"));
        }
    }
    found
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let known: BTreeSet<String> = modules.iter().map(|m| m.path.clone()).collect();
    modules
        .iter()
        .map(|m| (m.path.clone(), imports(m, &known)))
        .collect()
}

/// A circle through `start`, if any, as the modules along it.
fn circle_through(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        start: &str,
        at: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(at).into_iter().flatten() {
            if next == start {
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if walk(graph, start, next, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_owned()];
    walk(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn no_module_imports_a_module_that_imports_it_back() {
    let graph = graph();
    assert!(graph.contains_key("ctap2::authenticator"), "{graph:?}");
    let circles: Vec<String> = graph
        .keys()
        .filter_map(|module| circle_through(&graph, module))
        .map(|circle| circle.join(" -> "))
        .collect();
    assert!(
        circles.is_empty(),
        "import circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn a_lower_layer_never_imports_a_higher_one() {
    let rank = |path: &str| {
        let top = path.split("::").next().unwrap();
        TOP_LEVEL_RANKS
            .iter()
            .find(|(name, _)| *name == top)
            .map(|(_, rank)| *rank)
    };
    let mut wrong = Vec::new();
    for (module, imports) in graph() {
        if module.is_empty() {
            continue; // lib.rs re-exports what the crate offers.
        }
        let own = rank(&module).unwrap_or_else(|| panic!("{module} has no layer: add it"));
        for import in imports {
            let theirs = rank(&import).unwrap_or_else(|| panic!("{import} has no layer"));
            let same_top = module.split("::").next() == import.split("::").next();
            if !same_top && theirs >= own {
                wrong.push(format!(
                    "{module} (layer {own}) imports {import} (layer {theirs})"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_checker_sees_a_circle_and_a_layer_it_is_shown() {
    // The checker itself must be able to fail.
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    graph.insert("a".into(), BTreeSet::from(["b".into()]));
    graph.insert("b".into(), BTreeSet::from(["a".into()]));
    graph.insert("c".into(), BTreeSet::from(["a".into()]));
    assert_eq!(
        circle_through(&graph, "a"),
        Some(vec!["a".into(), "b".into()])
    );
    assert_eq!(circle_through(&graph, "c"), None);

    let module = Module {
        path: "ctap2::pin::token".into(),
        code: "use crate::status::StatusCode;\nuse super::protocol::X;\nuse super::super::state;"
            .into(),
    };
    let known = BTreeSet::from([
        "status".to_owned(),
        "ctap2::pin::protocol".to_owned(),
        "ctap2::state".to_owned(),
    ]);
    assert_eq!(
        imports(&module, &known),
        BTreeSet::from([
            "status".to_owned(),
            "ctap2::pin::protocol".to_owned(),
            "ctap2::state".to_owned(),
        ])
    );
}

//! Data flows one way: no module of `src/` or of `benches/throughput/`
//! reaches, through `crate::` paths, a module that reaches it back. A
//! module's own files (`src/link/write.rs` belongs to `link`) and its unit
//! tests count as the module.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("an entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
}

/// The top-level modules of the crate rooted at `dir` and the ones each
/// names as `crate::name`; `roots` (lib.rs, main.rs) are left out.
fn graph(dir: &str, roots: &[&str]) -> Graph {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let relative = file.strip_prefix(&root).expect("under the root");
        let first = relative.iter().next().expect("a name").to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if roots.contains(&module.as_str()) {
            continue;
        }
        let text = fs::read_to_string(&file).expect("readable");
        let uses = graph.entry(module.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let name: String = line[at + 7..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_' || c.is_ascii_digit())
                    .collect();
                if !name.is_empty() && name != module {
                    uses.insert(name);
                }
            }
        }
    }
    graph
}

/// A path of modules that leads from `start` back to it, if any.
fn cycle_from(graph: &Graph, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().expect("a path is never empty");
        for next in graph.get(last).into_iter().flatten() {
            if next == start {
                let mut cycle = path.clone();
                cycle.push(start.to_string());
                return Some(cycle);
            }
            if seen.insert(next.clone()) {
                let mut longer = path.clone();
                longer.push(next.clone());
                stack.push(longer);
            }
        }
    }
    None
}

fn cycles(graph: &Graph) -> Vec<String> {
    graph
        .keys()
        .filter_map(|module| cycle_from(graph, module))
        .map(|cycle| cycle.join(" -> "))
        .collect()
}

/// Asserts that the crate at `dir` (at least `modules` of them) has no cycle.
fn assert_acyclic(dir: &str, roots: &[&str], modules: usize) {
    let graph = graph(dir, roots);
    assert!(
        graph.len() > modules,
        "the modules of {dir}: {:?}",
        graph.keys()
    );
    let found = cycles(&graph);
    assert!(
        found.is_empty(),
        "module cycles in {dir}:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_module_of_the_crate_reaches_the_module_that_calls_it() {
    assert_acyclic("src", &["lib", "main"], 20);
}

#[test]
fn no_module_of_the_benchmark_reaches_the_module_that_calls_it() {
    assert_acyclic("benches/throughput", &["main"], 10);
}

#[test]
fn a_cycle_is_found() {
    let mut graph = Graph::new();
    graph.entry("a".into()).or_default().insert("b".into());
    graph.entry("b".into()).or_default().insert("c".into());
    graph.entry("c".into()).or_default().insert("a".into());
    graph.entry("d".into()).or_default().insert("a".into());
    assert_eq!(cycle_from(&graph, "a").unwrap(), ["a", "b", "c", "a"]);
    assert_eq!(cycle_from(&graph, "d"), None);
}

//! The top-level modules of the library import one another without a circle: shared pieces
//! sit below their users (STYLE.md, "No import circles"). Read from the sources, so that a new
//! `use crate::…` that closes a circle fails here with the circle named.
//!
//! Run alone: `cargo test --test module_graph -- --nocapture` also prints the modules in an
//! order where each imports only modules printed before it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Top-level module → the top-level modules its files name (`crate::x`, `use crate::{x, y}`,
/// `super::x` from a file directly below `src/`), with one place each names it.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The text without `//` comments (doc links name modules without importing them).
fn without_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifiers at the head of each path after `prefix` (`crate::ra::X` gives `ra`,
/// `crate::{ra, store::Y}` gives `ra` and `store`), with their line numbers.
fn heads_after(source: &str, prefix: &str) -> Vec<(String, usize)> {
    let mut heads = Vec::new();
    for (number, line) in source.lines().enumerate() {
        let mut rest = line;
        while let Some(i) = rest.find(prefix) {
            let preceded = rest[..i]
                .chars()
                .last()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            rest = &rest[i + prefix.len()..];
            if preceded {
                continue; // `other_crate::`, not this crate (`$crate::` is this crate)
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name = item.trim().split("::").next().unwrap_or("").trim();
                    heads.push((name.to_owned(), number + 1));
                }
            } else {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                heads.push((name, number + 1));
            }
        }
    }
    heads
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut modules = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = relative.components().next().unwrap().as_os_str();
        let top = Path::new(top).with_extension("");
        modules.insert(top.to_string_lossy().into_owned());
    }
    // Not modules of the library: the binary's root and the library's root itself (estca-bench
    // is a workspace member of its own, crates/estca-bench).
    for outside in ["lib", "main"] {
        modules.remove(outside);
    }
    let mut graph = Graph::new();
    for file in &files {
        let relative = file.strip_prefix(&src).unwrap();
        let top = Path::new(relative.components().next().unwrap().as_os_str())
            .with_extension("")
            .to_string_lossy()
            .into_owned();
        if !modules.contains(&top) {
            continue;
        }
        let source = without_comments(&std::fs::read_to_string(file).unwrap());
        let mut heads = heads_after(&source, "crate::");
        if relative.components().count() == 1 {
            // A file directly below src/ is a top-level module: its `super` is the crate.
            heads.extend(heads_after(&source, "super::"));
        }
        let edges = graph.entry(top.clone()).or_default();
        for (head, line) in heads {
            if head != top && modules.contains(&head) {
                edges
                    .entry(head)
                    .or_insert_with(|| format!("{}:{line}", relative.display()));
            }
        }
    }
    for module in modules {
        graph.entry(module).or_default();
    }
    graph
}

/// A circle through `graph`, as the modules in order and where each names the next.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        graph: &Graph,
        module: &str,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(module) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let start = path.iter().position(|m| m == module).unwrap_or(0);
                let mut cycle: Vec<String> = path[start..].to_vec();
                cycle.push(module.to_owned());
                let described = cycle
                    .windows(2)
                    .map(|pair| {
                        format!("{} -> {} ({})", pair[0], pair[1], graph[&pair[0]][&pair[1]])
                    })
                    .collect();
                return Some(described);
            }
            None => {}
        }
        marks.insert(module.to_owned(), Mark::Open);
        path.push(module.to_owned());
        for next in graph[module].keys() {
            if let Some(cycle) = visit(graph, next, marks, path) {
                return Some(cycle);
            }
        }
        path.pop();
        marks.insert(module.to_owned(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(graph, module, &mut marks, &mut Vec::new()) {
            return Some(cycle);
        }
    }
    None
}

/// The modules, each after every module it imports.
fn layers(graph: &Graph) -> Vec<String> {
    let mut placed: Vec<String> = Vec::new();
    while placed.len() < graph.len() {
        let before = placed.len();
        for (module, imports) in graph {
            if !placed.contains(module) && imports.keys().all(|m| placed.contains(m)) {
                placed.push(module.clone());
            }
        }
        assert!(placed.len() > before, "the graph has a circle");
    }
    placed
}

#[test]
fn top_level_modules_import_one_another_without_a_circle() {
    let graph = graph();
    assert!(graph.len() >= 15, "read too few modules: {graph:?}");
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import circle:\n  {}", cycle.join("\n  "));
    }
    for module in layers(&graph) {
        let imports: Vec<&str> = graph[&module].keys().map(String::as_str).collect();
        println!("{module:12} imports {}", imports.join(", "));
    }
}

/// The three circles issue 11 named stay open: the front ends take their shared HTTP pieces
/// from below, the registration authority reports to metrics through its own interface, and
/// the configuration checks the public URL without the CA.
#[test]
fn the_circles_issue_11_named_are_gone() {
    let graph = graph();
    for (from, to) in [
        ("est", "server"),
        ("api", "server"),
        ("revocation", "server"),
        ("revocation", "api"),
        ("revocation", "est"),
        ("ra", "metrics"),
        ("config", "ca"),
    ] {
        assert!(
            !graph[from].contains_key(to),
            "{from} imports {to} at {}",
            graph[from][to]
        );
    }
}

#[test]
fn the_reader_finds_imports_in_every_form() {
    let source = without_comments(
        "use crate::ra::X;\nuse crate::{model, store::Y};\n// crate::server\nlet x = crate::ca::f();\nlet y = abc_crate::z;\n$crate::source::f()\n",
    );
    let heads: Vec<String> = heads_after(&source, "crate::")
        .into_iter()
        .map(|(h, _)| h)
        .collect();
    assert_eq!(heads, ["ra", "model", "store", "ca", "source"]);
    let cyclic: Graph = [
        ("a", [("b", "a.rs:1")]),
        ("b", [("c", "b.rs:2")]),
        ("c", [("a", "c.rs:3")]),
    ]
    .into_iter()
    .map(|(m, edges)| {
        let edges = edges
            .into_iter()
            .map(|(to, at)| (to.to_owned(), at.to_owned()))
            .collect();
        (m.to_owned(), edges)
    })
    .collect();
    let cycle = find_cycle(&cyclic).unwrap();
    assert_eq!(
        cycle,
        ["a -> b (a.rs:1)", "b -> c (b.rs:2)", "c -> a (c.rs:3)"]
    );
}

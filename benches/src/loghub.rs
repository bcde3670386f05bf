//! The labelled Loghub 2k samples (`../shared/data/loghub-2k/<System>/`) and the grouping
//! accuracy of the log-parsing literature, for the template-mining harness and its test.

use std::collections::HashMap;
use std::fs::File;
use std::hash::Hash;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use arrow::array::{Array, AsArray};
use arrow::csv::ReaderBuilder;
use arrow::datatypes::{DataType, Field, Schema};

/// One labelled system: each line's message and its ground-truth event id.
pub struct Dataset {
    pub name: String,
    pub contents: Vec<String>,
    pub events: Vec<String>,
    /// The `Level` and `Component` columns where the system has them (the detection
    /// replay uses them as severity and process name).
    pub levels: Vec<Option<String>>,
    pub components: Vec<Option<String>>,
}

/// Where the samples live when the repository is checked out next to `shared/`.
pub fn default_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/loghub-2k")
}

/// Every `<System>/<System>_2k.log_structured.csv` under `root`, by system name.
pub fn load_all(root: &Path) -> Result<Vec<Dataset>> {
    let mut names: Vec<String> = std::fs::read_dir(root)
        .with_context(|| format!("cannot list {}", root.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
        .into_iter()
        .filter(|n| structured(root, n).exists())
        .map(|n| load(root, &n))
        .collect()
}

fn structured(root: &Path, name: &str) -> PathBuf {
    root.join(name)
        .join(format!("{name}_2k.log_structured.csv"))
}

pub fn load(root: &Path, name: &str) -> Result<Dataset> {
    let path = structured(root, name);
    let file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    // The header varies by system; every column is read as text.
    let header = std::io::BufRead::lines(std::io::BufReader::new(File::open(&path)?))
        .next()
        .context("empty file")??;
    let fields: Vec<Field> = header
        .trim_start_matches('\u{feff}')
        .split(',')
        .map(|c| Field::new(c.trim(), DataType::Utf8, true))
        .collect();
    let schema = Arc::new(Schema::new(fields));
    let reader = ReaderBuilder::new(schema.clone())
        .with_header(true)
        .build(file)?;
    let (ci, ei) = (schema.index_of("Content")?, schema.index_of("EventId")?);
    let (li, pi) = (
        schema.index_of("Level").ok(),
        schema.index_of("Component").ok(),
    );
    let (mut contents, mut events) = (Vec::new(), Vec::new());
    let (mut levels, mut components) = (Vec::new(), Vec::new());
    for batch in reader {
        let batch = batch?;
        let c = batch.column(ci).as_string::<i32>();
        let e = batch.column(ei).as_string::<i32>();
        let optional = |i: Option<usize>| i.map(|i| batch.column(i).as_string::<i32>().clone());
        let (l, p) = (optional(li), optional(pi));
        let text = |col: &Option<arrow::array::StringArray>, i: usize| {
            col.as_ref()
                .filter(|c| c.is_valid(i))
                .map(|c| c.value(i).to_string())
        };
        for i in 0..batch.num_rows() {
            contents.push(if c.is_null(i) { "" } else { c.value(i) }.to_string());
            events.push(e.value(i).to_string());
            levels.push(text(&l, i));
            components.push(text(&p, i));
        }
    }
    Ok(Dataset {
        name: name.to_string(),
        contents,
        events,
        levels,
        components,
    })
}

/// Grouping accuracy: the fraction of lines whose predicted group holds exactly the lines
/// of their true group.
pub fn grouping_accuracy<P: Eq + Hash, T: Eq + Hash>(predicted: &[P], truth: &[T]) -> f64 {
    assert_eq!(predicted.len(), truth.len());
    if truth.is_empty() {
        return 1.0;
    }
    let mut truth_size: HashMap<&T, usize> = HashMap::new();
    for t in truth {
        *truth_size.entry(t).or_default() += 1;
    }
    let mut groups: HashMap<&P, Vec<usize>> = HashMap::new();
    for (i, p) in predicted.iter().enumerate() {
        groups.entry(p).or_default().push(i);
    }
    let mut correct = 0;
    for lines in groups.values() {
        let t = &truth[lines[0]];
        if lines.iter().all(|&i| &truth[i] == t) && truth_size[t] == lines.len() {
            correct += lines.len();
        }
    }
    correct as f64 / truth.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_counts_exact_groups_only() {
        // Group {0,1} is exact; {2} misses line 3 of its true group; {3} is an extra split.
        assert_eq!(grouping_accuracy(&[1, 1, 2, 3], &["a", "a", "b", "b"]), 0.5);
        assert_eq!(grouping_accuracy(&[1, 1], &["a", "b"]), 0.0);
    }
}

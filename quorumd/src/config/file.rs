//! The TOML config file (`--config FILE` / `QUORUMD_CONFIG`).
//!
//! Every command-line option has a key: its long name in snake_case (`name`, `port`,
//! `master_script`, `peer = ["10.0.0.2:8080"]`, ...) and the timers live in a `[timers]` table
//! (`heartbeat = "200ms"`). The keys are not declared here: they come from the options of
//! `cli`. Values are read as text and parsed by the option's own parser, exactly like a flag.
//! Unknown keys are refused, naming the key, so a typo never silently falls back to a default.

use super::ConfigError;
use super::cli::FILE_KEY_ALIASES;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file's values by key (`timers.heartbeat` for the table), as text.
#[derive(Debug, Default)]
pub(super) struct FileValues {
    /// The file, for messages.
    pub path: Option<PathBuf>,
    values: BTreeMap<String, Vec<String>>,
}

impl FileValues {
    /// Reads and parses `path`; `known` says whether a key is an option's. Errors name the
    /// file, and the key.
    pub fn load(path: &Path, known: &dyn Fn(&str) -> bool) -> Result<FileValues, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFile {
            path: path.to_path_buf(),
            source,
        })?;
        let values = Self::parse(&text, known).map_err(|message| ConfigError::ParseFile {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(FileValues {
            path: Some(path.to_path_buf()),
            values,
        })
    }

    /// The value(s) of `key`, as text.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.values.get(key).map(Vec::as_slice)
    }

    fn parse(
        text: &str,
        known: &dyn Fn(&str) -> bool,
    ) -> Result<BTreeMap<String, Vec<String>>, String> {
        let table: toml::Table =
            toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        let mut values = BTreeMap::new();
        for (key, value) in table {
            match value {
                toml::Value::Table(timers) if key == "timers" => {
                    for (k, v) in timers {
                        insert(&mut values, &format!("timers.{k}"), v, known)?;
                    }
                }
                v => insert(&mut values, &key, v, known)?,
            }
        }
        Ok(values)
    }
}

fn insert(
    values: &mut BTreeMap<String, Vec<String>>,
    key: &str,
    value: toml::Value,
    known: &dyn Fn(&str) -> bool,
) -> Result<(), String> {
    let key = FILE_KEY_ALIASES
        .iter()
        .find(|(alias, _)| *alias == key)
        .map_or(key, |(_, k)| k);
    if !known(key) {
        return Err(format!("unknown key `{key}`"));
    }
    let text = match value {
        toml::Value::Array(items) => items
            .into_iter()
            .map(|v| scalar(key, v))
            .collect::<Result<_, _>>()?,
        v => vec![scalar(key, v)?],
    };
    if values.insert(key.to_string(), text).is_some() {
        return Err(format!("key `{key}` is given twice"));
    }
    Ok(())
}

fn scalar(key: &str, value: toml::Value) -> Result<String, String> {
    Ok(match value {
        toml::Value::String(s) => s,
        toml::Value::Integer(n) => n.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => {
            return Err(format!(
                "key `{key}`: expected text, a number or a boolean, found {}",
                other.type_str()
            ));
        }
    })
}

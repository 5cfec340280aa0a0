//! Configuration files of services (TOML or JSON): read, merge settings into, write back.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Context, Error, Result};
use crate::files;

/// How a configuration file is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// TOML, like Tendermint's `config.toml`.
    Toml,
    /// JSON, like BigchainDB's configuration.
    Json,
}

/// One configuration file of one service on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    /// Where it is.
    pub path: PathBuf,
    /// How it is written.
    pub format: Format,
}

impl ConfigFile {
    /// A file at `path` written as `format`.
    pub fn new(path: impl Into<PathBuf>, format: Format) -> ConfigFile {
        ConfigFile { path: path.into(), format }
    }

    /// The file's settings; an empty object if it does not exist yet.
    pub fn read(&self) -> Result<Value> {
        let text = match std::fs::read_to_string(&self.path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Value::Object(Map::new())),
            read => read.context(|| format!("reading {}", self.path.display()))?,
        };
        let parsed = match self.format {
            Format::Toml => toml::from_str(&text).map_err(|e| e.to_string()),
            Format::Json => serde_json::from_str(&text).map_err(|e| e.to_string()),
        };
        parsed.map_err(|e| Error::invalid(self.path.display().to_string(), e))
    }

    /// Merges `settings` (an object) into the file, see [`merge`].
    pub fn update(&self, settings: &Value) -> Result<()> {
        let mut doc = self.read()?;
        merge(&mut doc, settings)?;
        self.write(&doc)
    }

    /// Replaces the file with `doc`.
    pub fn write(&self, doc: &Value) -> Result<()> {
        let text = match self.format {
            Format::Toml => toml::to_string(doc).map_err(|e| e.to_string()),
            Format::Json => serde_json::to_string_pretty(doc).map_err(|e| e.to_string()),
        };
        let text = text.map_err(|e| Error::invalid(format!("settings for {}", self.path.display()), e))?;
        write_file(&self.path, text)
    }
}

/// Merges `settings` into `doc`: objects merge key by key, other values replace. A key with
/// dots (`consensus.timeout_commit`) names a nested key, so settings can be given flat or
/// nested. A null removes the key.
pub fn merge(doc: &mut Value, settings: &Value) -> Result<()> {
    let Value::Object(settings) = settings else {
        return Err(Error::invalid("settings", format!("expected a table of settings, got {settings}")));
    };
    for (key, value) in settings {
        let mut target = &mut *doc;
        let mut parts = key.split('.').peekable();
        while let Some(part) = parts.next() {
            if part.is_empty() {
                return Err(Error::invalid("settings", format!("'{key}' has an empty part")));
            }
            let Value::Object(map) = target else {
                return Err(Error::invalid(
                    "settings",
                    format!("'{key}': '{part}' is inside a value that is not a table"),
                ));
            };
            if parts.peek().is_some() {
                target = map.entry(part).or_insert_with(|| Value::Object(Map::new()));
                continue;
            }
            match (map.get_mut(part), value) {
                (_, Value::Null) => drop(map.remove(part)),
                (Some(old @ Value::Object(_)), Value::Object(_)) => merge(old, value)?,
                _ => drop(map.insert(part.to_string(), value.clone())),
            }
            break;
        }
    }
    Ok(())
}

/// Writes `text` to `path` (mode 0644), making its missing directories (0755).
pub(crate) fn write_file(path: &Path, text: impl AsRef<[u8]>) -> Result<()> {
    files::make_parents(path, 0o755)?;
    files::write_file(path, text.as_ref(), 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_nested_dotted_and_null() {
        let mut doc = json!({"moniker": "a", "p2p": {"pex": true, "laddr": "x"}, "gone": 1});
        merge(&mut doc, &json!({"p2p": {"pex": false}, "consensus.timeout_commit": "1s", "gone": null})).unwrap();
        assert_eq!(
            doc,
            json!({"moniker": "a", "p2p": {"pex": false, "laddr": "x"}, "consensus": {"timeout_commit": "1s"}})
        );
        assert!(merge(&mut doc, &json!({"moniker.x": 1})).unwrap_err().to_string().contains("not a table"));
        assert!(merge(&mut doc, &json!([1])).is_err());
    }

    #[test]
    fn toml_round_trip() {
        let dir = std::env::temp_dir().join(format!("netdriver-config-{}", std::process::id()));
        let file = ConfigFile::new(dir.join("config.toml"), Format::Toml);
        file.write(&json!({"p2p": {"seeds": ""}, "moniker": "n0"})).unwrap();
        file.update(&json!({"p2p.persistent_peers": "id@10.0.0.2:26656", "consensus": {"create_empty_blocks": false}}))
            .unwrap();
        let text = std::fs::read_to_string(&file.path).unwrap();
        assert!(text.starts_with("moniker = \"n0\""), "{text}");
        let doc = file.read().unwrap();
        assert_eq!(doc["p2p"]["persistent_peers"], "id@10.0.0.2:26656");
        assert_eq!(doc["consensus"]["create_empty_blocks"], false);
        std::fs::remove_dir_all(dir).unwrap();
    }
}

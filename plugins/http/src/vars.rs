//! The variables a requests file finds beside it: environments, as the
//! editors' clients keep them, and a `.env` file.
//!
//! - `http-client.env.json` and `http-client.private.env.json` (JetBrains
//!   HTTP Client, httpyac): `{"dev": {"host": "..."}, "prod": {...}}`;
//! - `.vscode/settings.json`, its `rest-client.environmentVariables`
//!   (VS Code REST Client), whose `$shared` environment is always there;
//! - `.env` (`{{$dotenv NAME}}`, and httpyac's plain `{{NAME}}`).
//!
//! `--set env=NAME` chooses the environment. Values stay text here: they
//! may use other variables, which `plan` resolves.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// The environment files, in the order their values win: the JetBrains
/// documentation gives public values precedence over private ones;
/// Visual Studio adds a per-user file.
const ENV_FILES: [&str; 3] = [
    "http-client.env.json",
    "http-client.private.env.json",
    "http-client.env.json.user",
];
const SETTINGS: &str = ".vscode/settings.json";

#[derive(Debug, Default)]
pub struct Sources {
    /// The chosen environment's variables.
    pub env: HashMap<String, String>,
    /// `$shared`: every environment's.
    pub shared: HashMap<String, String>,
    /// Which environment defines what, for messages: environment name and
    /// the variables it has.
    known: Vec<(String, BTreeSet<String>)>,
    dotenv: Option<(PathBuf, HashMap<String, String>)>,
    dotenv_path: PathBuf,
    /// `--set env=NAME`.
    chosen: Option<String>,
    /// Names whose value is not text, number or boolean, by environment.
    secrets: Vec<(String, String)>,
}

impl Sources {
    /// No variables (a HAR file).
    pub fn none() -> Sources {
        Sources::default()
    }

    /// Reads the environment files beside `file` (in `dir`) and chooses
    /// the one `--set env=NAME` names.
    pub fn load(
        file: &str,
        dir: &Path,
        param: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Sources, String> {
        let mut sources = Sources {
            dotenv_path: dir.join(".env"),
            ..Sources::default()
        };
        let mut environments: Vec<(String, Map<String, Value>)> = Vec::new();
        let env_dir = find_up(dir, &ENV_FILES).unwrap_or_else(|| dir.to_path_buf());
        for name in ENV_FILES {
            let path = env_dir.join(name);
            if let Some(document) = read_json(&path, false)? {
                collect(&path, document, &mut environments)?;
            }
        }
        let settings = find_up(dir, &[SETTINGS])
            .unwrap_or_else(|| dir.to_path_buf())
            .join(SETTINGS);
        if let Some(document) = read_json(&settings, true)? {
            if let Some(found) = document.get("rest-client.environmentVariables") {
                collect(&settings, found.clone(), &mut environments)?;
            }
        }
        for (name, values) in &environments {
            let names = values
                .iter()
                .filter(|(_, value)| plain(value).is_some())
                .map(|(key, _)| key.clone())
                .collect();
            sources.known.push((name.clone(), names));
        }
        for (name, values) in &environments {
            for (key, value) in values {
                if plain(value).is_none() {
                    sources.secrets.push((name.clone(), key.clone()));
                }
            }
        }
        for (name, values) in &environments {
            if name == "$shared" {
                merge(&mut sources.shared, values);
            }
        }
        sources.chosen = param("env").map(|e| e.trim().to_string());
        if let Some(chosen) = sources.chosen.clone() {
            let mut found = false;
            for (name, values) in &environments {
                if *name == chosen {
                    found = true;
                    merge(&mut sources.env, values);
                }
            }
            // httpyac keeps an environment in `NAME.env` alone.
            found |= dir.join(format!("{chosen}.env")).is_file();
            if !found {
                let names = sources.environment_names();
                return Err(if names.is_empty() {
                    format!(
                        "--set env={chosen}: there is no http-client.env.json, \
                         http-client.private.env.json or .vscode/settings.json beside {file}"
                    )
                } else {
                    format!(
                        "--set env={chosen}: no such environment beside {file} (there are: {})",
                        names.join(", ")
                    )
                });
            }
        }
        // httpyac also reads `NAME.env` for the chosen environment; its
        // values win over `.env`'s.
        let mut files = vec![sources.dotenv_path.clone()];
        files.extend(
            sources
                .chosen
                .as_ref()
                .map(|env| dir.join(format!("{env}.env"))),
        );
        for path in files.into_iter().filter(|p| p.is_file()) {
            let values = &mut sources
                .dotenv
                .get_or_insert_with(|| (path.clone(), HashMap::new()))
                .1;
            read_dotenv(&path, values)?;
        }
        Ok(sources)
    }

    fn environment_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .known
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| n != "$shared")
            .collect();
        dedup(&mut names);
        names
    }

    /// A `.env` value.
    pub fn dotenv(&self, name: &str) -> Option<String> {
        self.dotenv.as_ref()?.1.get(name).cloned()
    }

    pub fn dotenv_missing(&self, name: &str) -> String {
        match &self.dotenv {
            Some((path, _)) => format!("{{{{$dotenv {name}}}}}: {} has no {name}", path.display()),
            None => format!(
                "{{{{$dotenv {name}}}}}: there is no {} beside the requests file",
                self.dotenv_path.display()
            ),
        }
    }

    /// When `name` is in environments that were not chosen: the hint to
    /// choose one.
    pub fn environments_defining(&self, name: &str) -> Option<String> {
        if let Some(chosen) = &self.chosen {
            if self
                .secrets
                .iter()
                .any(|(env, secret)| env == chosen && secret == name)
            {
                return Some(format!(
                    "the environment {chosen} gives it as an object (a secret provider, say), \
                     which the plugin does not read: pass it with --set {name}=VALUE"
                ));
            }
        }
        let mut defining: Vec<&str> = self
            .known
            .iter()
            .filter(|(env, names)| env != "$shared" && names.contains(name))
            .map(|(env, _)| env.as_str())
            .collect();
        dedup(&mut defining);
        let first = defining.first()?;
        let (which, verb) = match defining.len() {
            1 => ("environment", "defines"),
            _ => ("environments", "define"),
        };
        let chosen = match &self.chosen {
            Some(chosen) => format!("env={chosen} is chosen: choose another with"),
            None => "none is chosen: add".to_string(),
        };
        Some(format!(
            "the {which} {} of the environment files {verb} it, and {chosen} --set env={first}",
            defining.join(", ")
        ))
    }
}

/// The folder of the first of `names` found: the requests file's folder,
/// or as Visual Studio and VS Code look, the nearest above it that has
/// one (not past the top of a git work tree).
fn find_up(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    let mut at = Some(dir);
    while let Some(candidate) = at {
        if names.iter().any(|name| candidate.join(name).is_file()) {
            return Some(candidate.to_path_buf());
        }
        if candidate.join(".git").exists() {
            break;
        }
        at = candidate.parent();
    }
    None
}

/// Adds the `KEY=VALUE` lines of a `.env` file to `values`.
fn read_dotenv(path: &Path, values: &mut HashMap<String, String>) -> Result<(), String> {
    let entries = dotenvy::from_path_iter(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for entry in entries {
        let (key, value) = entry.map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        values.insert(key, value);
    }
    Ok(())
}

/// Removes repeats, keeping the first of each.
fn dedup<T: PartialEq + Clone>(items: &mut Vec<T>) {
    let mut kept: Vec<T> = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        if !kept.contains(&item) {
            kept.push(item);
        }
    }
    *items = kept;
}

/// The JSON at `path`, or `None` when there is no such file. VS Code's
/// settings are JSON with comments and trailing commas (`lenient`).
fn read_json(path: &Path, lenient: bool) -> Result<Option<Value>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let text = text.trim_start_matches('\u{feff}');
    let text = if lenient {
        strip_jsonc(text)
    } else {
        text.to_string()
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| format!("{}:{}: not valid JSON: {e}", path.display(), e.line()))
}

/// `{"ENV": {"name": "value", ...}, ...}` into `environments`.
fn collect(
    path: &Path,
    document: Value,
    environments: &mut Vec<(String, Map<String, Value>)>,
) -> Result<(), String> {
    let Value::Object(envs) = document else {
        return Err(format!(
            "{}: expected an object of environments, such as {{\"dev\": {{\"host\": \"...\"}}}}",
            path.display()
        ));
    };
    for (name, values) in envs {
        // JetBrains keeps settings such as SSLConfiguration beside the
        // variables; only plain values are variables.
        if let Value::Object(values) = values {
            environments.push((name, values));
        }
    }
    Ok(())
}

/// Adds `values` that are text, numbers or booleans, without replacing
/// those already there.
fn merge(into: &mut HashMap<String, String>, values: &Map<String, Value>) {
    for (name, value) in values {
        if let Some(text) = plain(value) {
            into.entry(name.clone()).or_insert(text);
        }
    }
}

/// A variable's value: text, a number or a boolean.
fn plain(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// JSON with `//` and `/* */` comments and trailing commas, as plain
/// JSON.
fn strip_jsonc(text: &str) -> String {
    let text = crate::handler::strip_comments(text);
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if in_string => {
                out.push(c);
                out.extend(chars.next());
                continue;
            }
            '"' => in_string = !in_string,
            // A comma before a closing bracket is dropped.
            ',' if !in_string => {
                let next = chars.clone().find(|c| !c.is_whitespace());
                if matches!(next, Some('}' | ']')) {
                    continue;
                }
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vscode_settings_may_have_comments_and_trailing_commas() {
        let text = "{\n // a comment\n \"a\": \"x // not a comment\", /* b */\n \"b\": [1, 2,],\n}";
        let value: Value = serde_json::from_str(&strip_jsonc(text)).unwrap();
        assert_eq!(value["a"], "x // not a comment");
        assert_eq!(value["b"], serde_json::json!([1, 2]));
    }

    #[test]
    fn environments_are_chosen_and_shared_values_always_there() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("http-client.env.json"),
            r#"{"dev": {"host": "d", "port": 1, "SSLConfiguration": {"x": 1}}, "prod": {"host": "p"}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("http-client.private.env.json"),
            r#"{"dev": {"host": "ignored", "secret": "s"}}"#,
        )
        .unwrap();
        std::fs::create_dir(dir.path().join(".vscode")).unwrap();
        std::fs::write(
            dir.path().join(".vscode/settings.json"),
            "{\"rest-client.environmentVariables\": {\"$shared\": {\"v\": \"1\"},},}",
        )
        .unwrap();
        let param = |k: &str| (k == "env").then(|| "dev".to_string());
        let sources = Sources::load("f.http", dir.path(), &param).unwrap();
        assert_eq!(sources.env["host"], "d");
        assert_eq!(sources.env["port"], "1");
        assert_eq!(sources.env["secret"], "s");
        assert!(!sources.env.contains_key("SSLConfiguration"));
        assert!(sources
            .environments_defining("SSLConfiguration")
            .unwrap()
            .contains("gives it as an object"));
        assert_eq!(sources.shared["v"], "1");
        let none = |_: &str| None;
        let unchosen = Sources::load("f.http", dir.path(), &none).unwrap();
        assert!(unchosen
            .environments_defining("host")
            .unwrap()
            .contains("environments dev, prod of the environment files define it, and none is chosen: add --set env=dev"));
        let wrong = |k: &str| (k == "env").then(|| "qa".to_string());
        let error = Sources::load("f.http", dir.path(), &wrong).unwrap_err();
        assert!(error.contains("there are: dev, prod"), "{error}");
    }
}

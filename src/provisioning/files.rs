//! Grafana's provisioning files, parsed and checked without touching storage.
//!
//! Operators keep provisioning directories they already run against Grafana, so the
//! YAML shapes, key spellings, defaults and `$VAR` expansion follow Grafana's. Parsing
//! is kept pure (files in, typed values or a [`FileError`] out) so the service layer
//! can decide what to store and so a bad file is reported with the file, line and
//! column an operator needs to fix it, before anything is changed.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::de::{DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::domain::Action;

/// A provisioning file problem: which file, where, what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: PathBuf,
    pub line: Option<u64>,
    pub column: Option<u64>,
    pub message: String,
}

impl FileError {
    fn new(file: &Path, message: impl Into<String>) -> Self {
        FileError {
            file: file.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
        }
    }

    fn at(mut self, line: Option<u64>, column: Option<u64>) -> Self {
        self.line = line;
        self.column = if line.is_some() { column } else { None };
        self
    }

    fn io(file: &Path, err: &std::io::Error) -> Self {
        FileError::new(file, err.to_string())
    }

    fn yaml(file: &Path, err: &serde_saphyr::Error) -> Self {
        // Location::UNKNOWN is line 0; real positions are 1-based.
        let loc = err.location().filter(|l| l.line() > 0);
        FileError::new(file, yaml_message(err)).at(
            loc.map(|l| l.line()),
            loc.map(|l| l.column()).filter(|c| *c > 0),
        )
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "{file}:{l}:{c}: {}", self.message),
            (Some(l), None) => write!(f, "{file}:{l}: {}", self.message),
            _ => write!(f, "{file}: {}", self.message),
        }
    }
}

impl std::error::Error for FileError {}

/// The location already lives in `FileError`'s fields, and the snippet is multi-line;
/// keep only the one-line reason so `Display` stays a single greppable line.
fn yaml_message(err: &serde_saphyr::Error) -> String {
    let full = err.without_snippet().to_string();
    let first = full.lines().next().unwrap_or("").trim();
    let first = first.strip_prefix("error:").unwrap_or(first).trim_start();
    let first = strip_location_prefix(first).unwrap_or(first);
    let first = strip_location_suffix(first).unwrap_or(first).trim();
    if first.starts_with("multiple YAML documents") {
        // serde-saphyr's wording points at its own API; say what the operator did.
        "multiple YAML documents in one file are not supported".to_string()
    } else if first.is_empty() {
        "invalid YAML".to_string()
    } else {
        first.to_string()
    }
}

/// Strips a leading `line N column M: `.
fn strip_location_prefix(s: &str) -> Option<&str> {
    let s = s.strip_prefix("line ")?;
    let s = s.trim_start_matches(|c: char| c.is_ascii_digit());
    let s = s.strip_prefix(" column ")?;
    let s = s.trim_start_matches(|c: char| c.is_ascii_digit());
    Some(s.strip_prefix(':')?.trim_start())
}

/// Strips a trailing ` at line N, column M`.
fn strip_location_suffix(s: &str) -> Option<&str> {
    let at = s.rfind(" at line ")?;
    let tail = &s[at + " at line ".len()..];
    let tail = tail.trim_start_matches(|c: char| c.is_ascii_digit());
    let tail = tail.strip_prefix(", column ")?;
    tail.chars().all(|c| c.is_ascii_digit()).then_some(&s[..at])
}

/// A parsed file and where it came from.
#[derive(Debug, Clone)]
pub struct Parsed<T> {
    pub file: PathBuf,
    pub content: T,
}

/// A problem found after parsing, pinned to the list item it concerns so
/// [`read_dir`] can still report that item's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The top-level YAML key of the list (`datasources`, `deleteRoles`, ...).
    pub list: &'static str,
    pub index: usize,
    pub message: String,
}

fn invalid(list: &'static str, index: usize, message: impl Into<String>) -> Invalid {
    Invalid {
        list,
        index,
        message: message.into(),
    }
}

/// The five file kinds. The provided methods let [`read_dir`] stay generic while each
/// kind keeps its own expansion and checks; other implementors get no-ops.
pub trait HasApiVersion {
    fn api_version(&self) -> i64;

    /// Expands `$VAR` / `${VAR}` in every string value.
    fn expand_env(&mut self, _env: &dyn Fn(&str) -> Option<String>) {}

    /// Checks what serde cannot (required non-empty values, enumerations) and fills
    /// derived values (defaults Grafana applies after parsing, derived uids).
    fn validate(&mut self) -> Result<(), Invalid> {
        Ok(())
    }
}

/// Every `*.yaml` / `*.yml` file directly in `dir` (not recursive), sorted by file name;
/// a missing directory is an empty list. Each file is parsed, env-expanded (every string
/// value, nested maps included) and validated; the first failing file, in name order,
/// is the error. Files that are empty or only comments are skipped.
pub fn read_dir<T: DeserializeOwned + HasApiVersion>(
    dir: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<Parsed<T>>, FileError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(FileError::io(dir, &e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| FileError::io(dir, &e))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        // Grafana matches the suffix case-sensitively; so do we, to pick the same files.
        if (name.ends_with(".yaml") || name.ends_with(".yml")) && path.is_file() {
            files.push(path);
        }
    }
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));

    let mut out = Vec::new();
    for file in files {
        if let Some(content) = read_file::<T>(&file, env)? {
            out.push(Parsed { file, content });
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
struct ApiVersionProbe {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<serde_saphyr::Spanned<i64>>,
}

fn read_file<T: DeserializeOwned + HasApiVersion>(
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<T>, FileError> {
    let text = fs::read_to_string(file).map_err(|e| FileError::io(file, &e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);

    // A probe first: it tells an empty file (None) from a real one, and gives a
    // message that names apiVersion rather than serde's generic missing field.
    let probe = serde_saphyr::from_str::<Option<ApiVersionProbe>>(text)
        .map_err(|e| FileError::yaml(file, &e))?;
    let Some(probe) = probe else {
        return Ok(None);
    };
    match probe.api_version {
        None => return Err(FileError::new(file, "apiVersion is required")),
        Some(v) if v.value < 1 => {
            return Err(FileError::new(
                file,
                format!("apiVersion must be 1 or greater, got {}", v.value),
            )
            .at(Some(v.referenced.line()), Some(v.referenced.column())))
        }
        Some(_) => {}
    }

    let mut content: T = serde_saphyr::from_str(text).map_err(|e| FileError::yaml(file, &e))?;
    if content.api_version() < 1 {
        return Err(FileError::new(file, "apiVersion is required"));
    }
    content.expand_env(env);
    content.validate().map_err(|inv| {
        FileError::new(file, inv.message).at(item_line(text, inv.list, inv.index), None)
    })?;
    Ok(Some(content))
}

/// The line of item `index` of the top-level list `list`. Only used on the error path,
/// so a second parse is cheaper than carrying spans through the public types.
fn item_line(text: &str, list: &str, index: usize) -> Option<u64> {
    let top = serde_saphyr::from_str::<BTreeMap<String, ItemLines>>(text).ok()?;
    top.get(list)?.0.get(index).copied().filter(|l| *l > 0)
}

/// Lines of a sequence's items; anything else deserializes to no lines.
struct ItemLines(Vec<u64>);

impl<'de> Deserialize<'de> for ItemLines {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ItemLines;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<ItemLines, A::Error> {
                let mut lines = Vec::new();
                while let Some(item) = s.next_element::<serde_saphyr::Spanned<IgnoredAny>>()? {
                    lines.push(item.referenced.line());
                }
                Ok(ItemLines(lines))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<ItemLines, A::Error> {
                while m.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(ItemLines(Vec::new()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<ItemLines, E> {
                Ok(ItemLines(Vec::new()))
            }
            fn visit_i64<E>(self, _: i64) -> Result<ItemLines, E> {
                Ok(ItemLines(Vec::new()))
            }
            fn visit_u64<E>(self, _: u64) -> Result<ItemLines, E> {
                Ok(ItemLines(Vec::new()))
            }
            fn visit_f64<E>(self, _: f64) -> Result<ItemLines, E> {
                Ok(ItemLines(Vec::new()))
            }
            fn visit_str<E>(self, _: &str) -> Result<ItemLines, E> {
                Ok(ItemLines(Vec::new()))
            }
            fn visit_unit<E>(self) -> Result<ItemLines, E> {
                Ok(ItemLines(Vec::new()))
            }
            fn visit_none<E>(self) -> Result<ItemLines, E> {
                Ok(ItemLines(Vec::new()))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// Env expansion
// ---------------------------------------------------------------------------

/// Grafana's `pkg/services/provisioning/values` rules: `$VAR` and `${VAR}` become the
/// variable's value (empty when unset), `$$` is a literal `$`, and anything that is not
/// a well-formed reference (a lone `$`, `${` without `}`, `$1`) is kept as written so
/// passwords containing `$` survive.
pub fn expand_str(s: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
    if !s.contains('$') {
        return s.to_string();
    }
    let is_start = |c: u8| c.is_ascii_alphabetic() || c == b'_';
    let is_rest = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&s[copied..i]);
        let next = bytes.get(i + 1).copied();
        match next {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let start = i + 2;
                let mut end = start;
                while end < bytes.len() && is_rest(bytes[end]) {
                    end += 1;
                }
                let well_formed =
                    end > start && is_start(bytes[start]) && bytes.get(end).copied() == Some(b'}');
                if well_formed {
                    out.push_str(&env(&s[start..end]).unwrap_or_default());
                    i = end + 1;
                } else {
                    out.push('$');
                    i += 1;
                }
            }
            Some(c) if is_start(c) => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && is_rest(bytes[end]) {
                    end += 1;
                }
                out.push_str(&env(&s[start..end]).unwrap_or_default());
                i = end;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
        copied = i;
    }
    out.push_str(&s[copied..]);
    out
}

/// Expands every string inside a JSON value (keys are left alone: they are names).
pub fn expand_json(v: &mut Value, env: &dyn Fn(&str) -> Option<String>) {
    match v {
        Value::String(s) => *s = expand_str(s, env),
        Value::Array(items) => items.iter_mut().for_each(|i| expand_json(i, env)),
        Value::Object(map) => map.values_mut().for_each(|i| expand_json(i, env)),
        _ => {}
    }
}

trait Expand {
    fn expand(&mut self, env: &dyn Fn(&str) -> Option<String>);
}

impl Expand for String {
    fn expand(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        *self = expand_str(self, env);
    }
}

impl Expand for Map<String, Value> {
    fn expand(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        self.values_mut().for_each(|v| expand_json(v, env));
    }
}

impl Expand for BTreeMap<String, String> {
    fn expand(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        self.values_mut().for_each(|v| v.expand(env));
    }
}

impl<T: Expand> Expand for Vec<T> {
    fn expand(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        self.iter_mut().for_each(|v| v.expand(env));
    }
}

/// Implements [`Expand`] by expanding the listed fields; the list is the struct's
/// string-bearing fields, so a forgotten one shows up in review next to the struct.
macro_rules! expand_fields {
    ($ty:ty { $($field:ident),* $(,)? }) => {
        impl Expand for $ty {
            fn expand(&mut self, env: &dyn Fn(&str) -> Option<String>) {
                $(self.$field.expand(env);)*
            }
        }
    };
}

fn one() -> i64 {
    1
}

fn ten() -> i64 {
    10
}

fn file_type() -> String {
    "file".to_string()
}

/// Grafana treats an org id below 1 as the main org.
fn normalize_org(org_id: &mut i64) {
    if *org_id < 1 {
        *org_id = 1;
    }
}

fn sha256_hex(data: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, data.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

// ---------------------------------------------------------------------------
// Datasources
// ---------------------------------------------------------------------------

/// `datasources/*.yaml`. Unknown keys are ignored, as Grafana does, so files written
/// for newer Grafana versions still load.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasourcesFile {
    pub api_version: i64,
    #[serde(default)]
    pub datasources: Vec<DatasourceDef>,
    #[serde(default)]
    pub delete_datasources: Vec<DeleteDatasourceDef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasourceDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Empty means the caller's default (proxy).
    #[serde(default)]
    pub access: String,
    #[serde(default = "one")]
    pub org_id: i64,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub database: String,
    #[serde(default)]
    pub basic_auth_user: String,
    #[serde(default)]
    pub basic_auth: bool,
    #[serde(default)]
    pub with_credentials: bool,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub editable: bool,
    #[serde(default)]
    pub json_data: Map<String, Value>,
    #[serde(default)]
    pub secure_json_data: BTreeMap<String, String>,
    #[serde(default)]
    pub version: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteDatasourceDef {
    pub name: String,
    #[serde(default = "one")]
    pub org_id: i64,
}

expand_fields!(DatasourceDef {
    name,
    kind,
    access,
    uid,
    url,
    user,
    database,
    basic_auth_user,
    json_data,
    secure_json_data,
});
expand_fields!(DeleteDatasourceDef { name });

impl HasApiVersion for DatasourcesFile {
    fn api_version(&self) -> i64 {
        self.api_version
    }

    fn expand_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        self.datasources.expand(env);
        self.delete_datasources.expand(env);
    }

    fn validate(&mut self) -> Result<(), Invalid> {
        for (i, ds) in self.datasources.iter_mut().enumerate() {
            if ds.name.trim().is_empty() {
                return Err(invalid("datasources", i, "datasource name is required"));
            }
            if ds.kind.trim().is_empty() {
                return Err(invalid(
                    "datasources",
                    i,
                    format!("datasource '{}': type is required", ds.name),
                ));
            }
            normalize_org(&mut ds.org_id);
        }
        for (i, del) in self.delete_datasources.iter_mut().enumerate() {
            if del.name.trim().is_empty() {
                return Err(invalid(
                    "deleteDatasources",
                    i,
                    "datasource name is required",
                ));
            }
            normalize_org(&mut del.org_id);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Dashboards
// ---------------------------------------------------------------------------

/// `dashboards/*.yaml`: providers, each pointing at a directory of dashboard JSON.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardsFile {
    pub api_version: i64,
    #[serde(default)]
    pub providers: Vec<DashboardProvider>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DashboardProvider {
    pub name: String,
    #[serde(default = "one")]
    pub org_id: i64,
    #[serde(default)]
    pub folder: String,
    #[serde(default)]
    pub folder_uid: String,
    /// Only `file` is supported (an empty value is read as `file`).
    #[serde(rename = "type", default = "file_type")]
    pub kind: String,
    #[serde(default)]
    pub disable_deletion: bool,
    /// Values below 1 become Grafana's default of 10, since 0 would mean a busy loop.
    #[serde(default = "ten")]
    pub update_interval_seconds: i64,
    #[serde(default)]
    pub allow_ui_updates: bool,
    #[serde(default)]
    pub options: ProviderOptions,
    /// tollgate extension: delete dashboards whose file is gone.
    #[serde(default)]
    pub prune: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderOptions {
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub folders_from_files_structure: bool,
}

expand_fields!(DashboardProvider {
    name,
    folder,
    folder_uid,
    kind
});

impl Expand for ProviderOptions {
    fn expand(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        self.path.expand(env);
    }
}

impl HasApiVersion for DashboardsFile {
    fn api_version(&self) -> i64 {
        self.api_version
    }

    fn expand_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        for p in &mut self.providers {
            p.expand(env);
            p.options.expand(env);
        }
    }

    fn validate(&mut self) -> Result<(), Invalid> {
        for (i, p) in self.providers.iter_mut().enumerate() {
            if p.name.trim().is_empty() {
                return Err(invalid(
                    "providers",
                    i,
                    "dashboard provider name is required",
                ));
            }
            if p.kind.is_empty() {
                p.kind = file_type();
            }
            if p.kind != "file" {
                return Err(invalid(
                    "providers",
                    i,
                    format!(
                        "dashboard provider '{}': type '{}' is not supported (only 'file')",
                        p.name, p.kind
                    ),
                ));
            }
            if p.options.path.trim().is_empty() {
                return Err(invalid(
                    "providers",
                    i,
                    format!("dashboard provider '{}': options.path is required", p.name),
                ));
            }
            if p.update_interval_seconds < 1 {
                p.update_interval_seconds = ten();
            }
            normalize_org(&mut p.org_id);
        }
        Ok(())
    }
}

/// Where a provider's `options.path` points. Absolute paths stay; relative ones are
/// taken from the provisioning root (the parent of the `dashboards/` directory holding
/// `provider_file`) rather than the process's working directory as Grafana does, so the
/// result does not depend on where tollgate was started.
pub fn resolve_path(provider_file: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    provider_file
        .parent()
        .and_then(Path::parent)
        .unwrap_or_else(|| Path::new(""))
        .join(path)
}

/// A dashboard JSON file found under a provider's path.
#[derive(Debug, Clone)]
pub struct DashboardFile {
    /// The provider root joined with `relative`.
    pub path: PathBuf,
    /// Path relative to the provider root with `/` separators: the stable key.
    pub relative: String,
    /// With `foldersFromFilesStructure`: the first directory of `relative`; None at the root.
    pub folder: Option<String>,
    /// The JSON's `uid` if a non-empty string, else derived from provider and
    /// `relative` so it survives restarts. `json` itself is left as in the file.
    pub uid: String,
    pub title: String,
    pub tags: Vec<String>,
    /// The dashboard object, unwrapped from a `{"dashboard": {...}}` envelope.
    pub json: Value,
    /// File mtime, unix seconds.
    pub modified: i64,
}

/// Walks `root` recursively (directory entries in name order) and loads every `*.json`
/// file. Symlinked files are read; symlinked directories are not entered, so a link
/// loop cannot hang provisioning.
pub fn scan_dashboards(
    provider_name: &str,
    root: &Path,
    folders_from_files_structure: bool,
) -> Result<Vec<DashboardFile>, FileError> {
    match fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(FileError::new(
                root,
                format!("dashboards path {} is not a directory", root.display()),
            ))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(FileError::new(
                root,
                format!("dashboards path {} does not exist", root.display()),
            ))
        }
        Err(e) => return Err(FileError::io(root, &e)),
    }
    let mut paths = Vec::new();
    walk(root, &mut paths)?;

    let mut out: Vec<DashboardFile> = Vec::with_capacity(paths.len());
    let mut by_uid: BTreeMap<String, String> = BTreeMap::new();
    for path in paths {
        let dash = load_dashboard(provider_name, root, &path, folders_from_files_structure)?;
        if let Some(other) = by_uid.get(&dash.uid) {
            return Err(FileError::new(
                &dash.path,
                format!("dashboard uid '{}' is also used by {other}", dash.uid),
            ));
        }
        by_uid.insert(dash.uid.clone(), dash.relative.clone());
        out.push(dash);
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), FileError> {
    let mut entries = fs::read_dir(dir)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| FileError::io(dir, &e))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let ft = entry.file_type().map_err(|e| FileError::io(&path, &e))?;
        if ft.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "json")
            && (ft.is_file() || (ft.is_symlink() && path.is_file()))
        {
            out.push(path);
        }
    }
    Ok(())
}

fn load_dashboard(
    provider_name: &str,
    root: &Path,
    path: &Path,
    folders_from_files_structure: bool,
) -> Result<DashboardFile, FileError> {
    let rel_path = path.strip_prefix(root).unwrap_or(path);
    let parts: Vec<String> = rel_path
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let relative = parts.join("/");
    let folder = match parts.as_slice() {
        [first, _, ..] if folders_from_files_structure => Some(first.clone()),
        _ => None,
    };

    let text = fs::read_to_string(path).map_err(|e| FileError::io(path, &e))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut json: Value = serde_json::from_str(text).map_err(|e| {
        FileError::new(path, e.to_string()).at(Some(e.line() as u64), Some(e.column() as u64))
    })?;
    // Grafana accepts the export envelope as well as the bare dashboard.
    if let Some(inner) = json.get_mut("dashboard").filter(|d| d.is_object()) {
        json = inner.take();
    }
    if !json.is_object() {
        return Err(FileError::new(path, "dashboard JSON must be an object"));
    }
    let title = match json.get("title").and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() => t.to_string(),
        _ => return Err(FileError::new(path, "dashboard title is required")),
    };
    let uid = match json.get("uid").and_then(Value::as_str) {
        Some(u) if !u.is_empty() => u.to_string(),
        _ => sha256_hex(&format!("{provider_name}/{relative}"))[..14].to_string(),
    };
    let tags = json
        .get("tags")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let modified = fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);

    Ok(DashboardFile {
        path: root.join(rel_path),
        relative,
        folder,
        uid,
        title,
        tags,
        json,
        modified,
    })
}

// ---------------------------------------------------------------------------
// Plugins
// ---------------------------------------------------------------------------

/// `plugins/*.yaml`: app plugin settings. Grafana spells these keys snake_case except
/// `jsonData` / `secureJsonData`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PluginsFile {
    #[serde(rename = "apiVersion")]
    pub api_version: i64,
    #[serde(default)]
    pub apps: Vec<AppDef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AppDef {
    /// The plugin id.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "one")]
    pub org_id: i64,
    /// When set, the caller resolves the org by name instead of `org_id`.
    #[serde(default)]
    pub org_name: String,
    #[serde(default)]
    pub disabled: bool,
    #[serde(default, rename = "jsonData")]
    pub json_data: Map<String, Value>,
    #[serde(default, rename = "secureJsonData")]
    pub secure_json_data: BTreeMap<String, String>,
}

expand_fields!(AppDef {
    kind,
    org_name,
    json_data,
    secure_json_data
});

impl HasApiVersion for PluginsFile {
    fn api_version(&self) -> i64 {
        self.api_version
    }

    fn expand_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        self.apps.expand(env);
    }

    fn validate(&mut self) -> Result<(), Invalid> {
        for (i, app) in self.apps.iter_mut().enumerate() {
            if app.kind.trim().is_empty() {
                return Err(invalid("apps", i, "app type (the plugin id) is required"));
            }
            normalize_org(&mut app.org_id);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Notifiers
// ---------------------------------------------------------------------------

/// `notifiers/*.yaml`: Grafana's legacy alert notification channels, snake_case keys.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NotifiersFile {
    #[serde(rename = "apiVersion")]
    pub api_version: i64,
    #[serde(default)]
    pub notifiers: Vec<NotifierDef>,
    #[serde(default)]
    pub delete_notifiers: Vec<DeleteNotifierDef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NotifierDef {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// Required: dashboards' legacy alerts reference notifiers by uid.
    #[serde(default)]
    pub uid: String,
    #[serde(default = "one")]
    pub org_id: i64,
    /// When set, the caller resolves the org by name instead of `org_id`.
    #[serde(default)]
    pub org_name: String,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub send_reminder: bool,
    #[serde(default)]
    pub frequency: String,
    #[serde(default)]
    pub disable_resolve_message: bool,
    #[serde(default)]
    pub settings: Map<String, Value>,
    #[serde(default)]
    pub secure_settings: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeleteNotifierDef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default = "one")]
    pub org_id: i64,
    #[serde(default)]
    pub org_name: String,
}

expand_fields!(NotifierDef {
    name,
    kind,
    uid,
    org_name,
    frequency,
    settings,
    secure_settings,
});
expand_fields!(DeleteNotifierDef {
    name,
    uid,
    org_name
});

impl HasApiVersion for NotifiersFile {
    fn api_version(&self) -> i64 {
        self.api_version
    }

    fn expand_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        self.notifiers.expand(env);
        self.delete_notifiers.expand(env);
    }

    fn validate(&mut self) -> Result<(), Invalid> {
        for (i, n) in self.notifiers.iter_mut().enumerate() {
            if n.name.trim().is_empty() {
                return Err(invalid("notifiers", i, "notifier name is required"));
            }
            if n.kind.trim().is_empty() {
                return Err(invalid(
                    "notifiers",
                    i,
                    format!("notifier '{}': type is required", n.name),
                ));
            }
            if n.uid.trim().is_empty() {
                return Err(invalid(
                    "notifiers",
                    i,
                    format!("notifier '{}': notifier uid is required", n.name),
                ));
            }
            normalize_org(&mut n.org_id);
        }
        for (i, d) in self.delete_notifiers.iter_mut().enumerate() {
            if d.name.trim().is_empty() && d.uid.trim().is_empty() {
                return Err(invalid(
                    "delete_notifiers",
                    i,
                    "deleted notifier needs a name or a uid",
                ));
            }
            normalize_org(&mut d.org_id);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Access control
// ---------------------------------------------------------------------------

/// `access-control/*.yaml`: Grafana Enterprise's custom roles, in both the v8 shape
/// (`builtInRoles`) and the v9 one (`state: absent`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessControlFile {
    pub api_version: i64,
    #[serde(default)]
    pub roles: Vec<RoleDef>,
    #[serde(default)]
    pub delete_roles: Vec<DeleteRoleDef>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDef {
    pub name: String,
    /// Derived when empty (`custom_` + 12 hex of sha256(name)), so it is always set.
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub global: bool,
    #[serde(default = "one")]
    pub org_id: i64,
    #[serde(default)]
    pub permissions: Vec<PermissionDef>,
    /// v8 format: assignments to basic roles.
    #[serde(default)]
    pub built_in_roles: Vec<BuiltInRoleDef>,
    /// tollgate extension: assignments to users by login.
    #[serde(default)]
    pub users: Vec<UserAssignmentDef>,
    /// `""` or `present`; `absent` deletes the role (v9 format).
    #[serde(default)]
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct PermissionDef {
    pub action: String,
    #[serde(default)]
    pub scope: String,
}

/// `name` is one of Viewer, Editor, Admin, Grafana Admin.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuiltInRoleDef {
    pub name: String,
    #[serde(default = "one")]
    pub org_id: i64,
    #[serde(default)]
    pub global: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignmentDef {
    pub login: String,
    #[serde(default = "one")]
    pub org_id: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteRoleDef {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
    #[serde(default = "one")]
    pub org_id: i64,
    #[serde(default)]
    pub global: bool,
    #[serde(default)]
    pub force: bool,
}

expand_fields!(RoleDef {
    name,
    uid,
    description,
    display_name,
    group,
    permissions,
    built_in_roles,
    users,
    state,
});
expand_fields!(PermissionDef { action, scope });
expand_fields!(BuiltInRoleDef { name });
expand_fields!(UserAssignmentDef { login });
expand_fields!(DeleteRoleDef { name, uid });

const BUILT_IN_ROLES: [&str; 4] = ["Viewer", "Editor", "Admin", "Grafana Admin"];

impl HasApiVersion for AccessControlFile {
    fn api_version(&self) -> i64 {
        self.api_version
    }

    fn expand_env(&mut self, env: &dyn Fn(&str) -> Option<String>) {
        self.roles.expand(env);
        self.delete_roles.expand(env);
    }

    fn validate(&mut self) -> Result<(), Invalid> {
        for (i, r) in self.roles.iter_mut().enumerate() {
            if r.name.trim().is_empty() {
                return Err(invalid("roles", i, "role name is required"));
            }
            if !matches!(r.state.as_str(), "" | "present" | "absent") {
                return Err(invalid(
                    "roles",
                    i,
                    format!(
                        "role '{}': state '{}' is invalid (present or absent)",
                        r.name, r.state
                    ),
                ));
            }
            if r.permissions.iter().any(|p| p.action.trim().is_empty()) {
                return Err(invalid(
                    "roles",
                    i,
                    format!("role '{}': every permission needs an action", r.name),
                ));
            }
            // The same check as the role API, so a typo is a reload error, not a role that
            // silently grants nothing.
            let unknown: Vec<&str> = r
                .permissions
                .iter()
                .map(|p| p.action.as_str())
                .filter(|a| Action::parse(a).is_none())
                .collect();
            if !unknown.is_empty() {
                return Err(invalid(
                    "roles",
                    i,
                    format!(
                        "role '{}': unknown action(s): {}",
                        r.name,
                        unknown.join(", ")
                    ),
                ));
            }
            if let Some(b) = r
                .built_in_roles
                .iter()
                .find(|b| !BUILT_IN_ROLES.contains(&b.name.as_str()))
            {
                return Err(invalid(
                    "roles",
                    i,
                    format!(
                        "role '{}': built-in role '{}' is invalid (Viewer, Editor, Admin or Grafana Admin)",
                        r.name, b.name
                    ),
                ));
            }
            if r.users.iter().any(|u| u.login.trim().is_empty()) {
                return Err(invalid(
                    "roles",
                    i,
                    format!("role '{}': every user assignment needs a login", r.name),
                ));
            }
            if r.uid.is_empty() {
                r.uid = format!("custom_{}", &sha256_hex(&r.name)[..12]);
            }
            normalize_org(&mut r.org_id);
            r.built_in_roles
                .iter_mut()
                .for_each(|b| normalize_org(&mut b.org_id));
            r.users
                .iter_mut()
                .for_each(|u| normalize_org(&mut u.org_id));
        }
        for (i, d) in self.delete_roles.iter_mut().enumerate() {
            if d.name.trim().is_empty() && d.uid.trim().is_empty() {
                return Err(invalid(
                    "deleteRoles",
                    i,
                    "deleted role needs a name or a uid",
                ));
            }
            normalize_org(&mut d.org_id);
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/provisioning")
    }

    fn fake_env(name: &str) -> Option<String> {
        match name {
            "PG_PASSWORD" => Some("pg-secret".into()),
            "ONCALL_TOKEN" => Some("oncall-secret".into()),
            "SLACK_WEBHOOK" => Some("https://hooks.slack.example/T0".into()),
            "A" => Some("alpha".into()),
            _ => None,
        }
    }

    fn write(dir: &Path, name: &str, text: &str) {
        fs::write(dir.join(name), text).unwrap();
    }

    fn read_one<T: DeserializeOwned + HasApiVersion>(text: &str) -> Result<T, FileError> {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "x.yaml", text);
        let mut v = read_dir::<T>(dir.path(), &fake_env)?;
        assert_eq!(v.len(), 1);
        Ok(v.remove(0).content)
    }

    #[test]
    fn expand_str_cases() {
        let e = |s: &str| expand_str(s, &fake_env);
        assert_eq!(e("$A"), "alpha");
        assert_eq!(e("x${A}y"), "xalphay");
        assert_eq!(e("$A-$A"), "alpha-alpha");
        assert_eq!(e("$$A"), "$A");
        assert_eq!(e("a$$"), "a$");
        assert_eq!(e("$UNSET"), "");
        assert_eq!(e("x${UNSET}y"), "xy");
        assert_eq!(e("end$"), "end$");
        assert_eq!(e("${A"), "${A");
        assert_eq!(e("${}"), "${}");
        assert_eq!(e("$1"), "$1");
        assert_eq!(e("p@$ w"), "p@$ w");
        assert_eq!(e("héllo $A é"), "héllo alpha é");
        assert_eq!(e("plain"), "plain");
    }

    #[test]
    fn datasources_fixture() {
        let files =
            read_dir::<DatasourcesFile>(&fixtures().join("datasources"), &fake_env).unwrap();
        assert_eq!(files.len(), 1);
        assert!(files[0].file.ends_with("datasources.yaml"));
        let f = &files[0].content;
        assert_eq!(f.api_version, 1);
        assert_eq!(f.datasources.len(), 2);
        let prom = &f.datasources[0];
        assert_eq!(prom.name, "Prometheus");
        assert_eq!(prom.kind, "prometheus");
        assert_eq!(prom.uid, "prometheus-main");
        assert_eq!(prom.url, "http://prometheus:9090");
        assert!(prom.is_default);
        assert_eq!(prom.org_id, 1);
        assert_eq!(prom.json_data["httpMethod"], "POST");
        assert_eq!(prom.json_data["timeInterval"], "30s");
        let pg = &f.datasources[1];
        assert_eq!(pg.uid, "postgres-main");
        assert_eq!(pg.user, "grafana");
        assert_eq!(pg.database, "metrics");
        assert_eq!(pg.json_data["sslmode"], "disable");
        assert_eq!(pg.secure_json_data["password"], "pg-secret");
        assert_eq!(
            f.delete_datasources,
            vec![DeleteDatasourceDef {
                name: "Old Graphite".into(),
                org_id: 1
            }]
        );
    }

    #[test]
    fn dashboards_fixture_and_scan() {
        let files = read_dir::<DashboardsFile>(&fixtures().join("dashboards"), &fake_env).unwrap();
        let p = &files[0].content.providers[0];
        assert_eq!(p.name, "default");
        assert_eq!(p.folder, "Services");
        assert_eq!(p.folder_uid, "services");
        assert_eq!(p.kind, "file");
        assert_eq!(p.update_interval_seconds, 1);
        assert!(!p.allow_ui_updates);
        assert!(!p.options.folders_from_files_structure);
        let root = resolve_path(&files[0].file, &p.options.path);
        assert_eq!(root, fixtures().join("dashboards-json"));

        let dashes = scan_dashboards(&p.name, &root, false).unwrap();
        assert_eq!(dashes.len(), 2);
        assert_eq!(dashes[0].relative, "api-latency.json");
        assert_eq!(dashes[0].uid, "api-latency");
        assert_eq!(dashes[0].title, "API latency");
        assert_eq!(dashes[0].tags, vec!["api", "latency"]);
        assert_eq!(dashes[0].folder, None);
        assert!(dashes[0].modified > 0);
        assert_eq!(
            dashes[0].json["panels"][0]["alert"]["name"],
            "API p99 too high"
        );
        assert_eq!(dashes[1].uid, "node-overview");
        assert_eq!(dashes[1].title, "Node overview");
        assert_eq!(dashes[1].tags, vec!["infra"]);
    }

    #[test]
    fn resolve_path_absolute_and_relative() {
        let f = Path::new("/etc/prov/dashboards/a.yaml");
        assert_eq!(resolve_path(f, "/var/d"), PathBuf::from("/var/d"));
        assert_eq!(resolve_path(f, "json"), PathBuf::from("/etc/prov/json"));
    }

    #[test]
    fn scan_derives_uid_unwraps_envelope_and_folders() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("team")).unwrap();
        write(
            dir.path(),
            "root.json",
            r#"{"title": "Root", "tags": ["a", 1]}"#,
        );
        write(
            &dir.path().join("team"),
            "inner.json",
            r#"{"dashboard": {"title": "Inner", "uid": "inner"}, "overwrite": true}"#,
        );
        write(dir.path(), "notes.txt", "ignored");
        let d = scan_dashboards("prov", dir.path(), true).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].relative, "root.json");
        assert_eq!(d[0].folder, None);
        assert_eq!(d[0].tags, vec!["a"]);
        let expected = sha256_hex("prov/root.json")[..14].to_string();
        assert_eq!(d[0].uid, expected);
        assert_eq!(d[1].relative, "team/inner.json");
        assert_eq!(d[1].folder.as_deref(), Some("team"));
        assert_eq!(d[1].uid, "inner");
        assert_eq!(d[1].json["title"], "Inner");
        assert!(d[1].json.get("overwrite").is_none());
    }

    #[test]
    fn scan_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let e = scan_dashboards("p", &missing, false).unwrap_err();
        assert!(e.message.contains("does not exist"), "{e}");

        write(
            dir.path(),
            "bad.json",
            "{\n  \"title\": \"x\",\n  \"uid\": ,\n}",
        );
        let e = scan_dashboards("p", dir.path(), false).unwrap_err();
        assert!(e.file.ends_with("bad.json"));
        assert_eq!(e.line, Some(3));
        assert!(e.column.is_some());
        assert!(e.to_string().contains("bad.json:3:"), "{e}");
        fs::remove_file(dir.path().join("bad.json")).unwrap();

        write(dir.path(), "a.json", r#"{"uid": "same", "title": "A"}"#);
        write(dir.path(), "b.json", r#"{"uid": "same", "title": "B"}"#);
        let e = scan_dashboards("p", dir.path(), false).unwrap_err();
        assert!(e.file.ends_with("b.json"));
        assert_eq!(e.message, "dashboard uid 'same' is also used by a.json");
        fs::remove_file(dir.path().join("b.json")).unwrap();

        write(dir.path(), "c.json", r#"{"uid": "c"}"#);
        let e = scan_dashboards("p", dir.path(), false).unwrap_err();
        assert_eq!(e.message, "dashboard title is required");
    }

    #[test]
    fn plugins_fixture() {
        let files = read_dir::<PluginsFile>(&fixtures().join("plugins"), &fake_env).unwrap();
        let app = &files[0].content.apps[0];
        assert_eq!(app.kind, "grafana-oncall-app");
        assert_eq!(app.org_id, 1);
        assert!(!app.disabled);
        assert_eq!(app.json_data["stackId"], 5);
        assert_eq!(app.json_data["onCallApiUrl"], "https://oncall.example.com");
        assert_eq!(app.secure_json_data["onCallApiToken"], "oncall-secret");
    }

    #[test]
    fn notifiers_fixture() {
        let files = read_dir::<NotifiersFile>(&fixtures().join("notifiers"), &fake_env).unwrap();
        let f = &files[0].content;
        assert_eq!(f.notifiers.len(), 2);
        let email = &f.notifiers[0];
        assert_eq!(email.name, "Ops email");
        assert_eq!(email.kind, "email");
        assert_eq!(email.uid, "ops-email");
        assert!(email.is_default);
        assert_eq!(email.settings["addresses"], "ops@example.com");
        let slack = &f.notifiers[1];
        assert_eq!(slack.uid, "ops-slack");
        assert_eq!(slack.settings["recipient"], "#ops");
        assert_eq!(slack.settings["uploadImage"], true);
        assert_eq!(
            slack.secure_settings["url"],
            "https://hooks.slack.example/T0"
        );
        assert_eq!(f.delete_notifiers[0].uid, "legacy-pager");
        assert_eq!(f.delete_notifiers[0].name, "Legacy pager");
    }

    #[test]
    fn access_control_fixture() {
        let files =
            read_dir::<AccessControlFile>(&fixtures().join("access-control"), &fake_env).unwrap();
        let f = &files[0].content;
        assert_eq!(f.roles.len(), 2);
        let saml = &f.roles[0];
        assert_eq!(saml.name, "custom:saml:reader");
        assert_eq!(saml.uid, "custom-saml-reader");
        assert!(saml.global);
        assert_eq!(saml.version, 1);
        assert_eq!(saml.permissions[0].action, "settings:read");
        assert_eq!(saml.permissions[0].scope, "settings:auth.saml:*");
        assert_eq!(saml.built_in_roles[0].name, "Viewer");
        assert_eq!(f.roles[1].users[0].login, "auditor");
        assert_eq!(f.delete_roles[0].name, "custom:old:role");
        assert!(f.delete_roles[0].global);
    }

    #[test]
    fn role_actions_are_checked() {
        let e = read_one::<AccessControlFile>(
            "apiVersion: 1\nroles:\n  - name: custom:x\n    permissions:\n      - action: users:read\n      - action: users:fly\n",
        )
        .unwrap_err();
        assert_eq!(e.message, "role 'custom:x': unknown action(s): users:fly");
        assert!(e.to_string().contains("x.yaml:3:"), "{e}");
        // Aliases (Grafana's newer names) are actions too.
        read_one::<AccessControlFile>(
            "apiVersion: 1\nroles:\n  - name: custom:x\n    permissions:\n      - action: users.password:write\n      - action: users.permissions:read\n",
        )
        .unwrap();
    }

    #[test]
    fn role_uid_is_derived() {
        let f: AccessControlFile = read_one(
            "apiVersion: 2\nroles:\n  - name: custom:x\n    permissions:\n      - action: users:read\n",
        )
        .unwrap();
        assert_eq!(
            f.roles[0].uid,
            format!("custom_{}", &sha256_hex("custom:x")[..12])
        );
        assert_eq!(f.roles[0].uid.len(), "custom_".len() + 12);
    }

    #[test]
    fn missing_dir_empty_and_non_yaml_files() {
        let dir = tempfile::tempdir().unwrap();
        let none = read_dir::<DatasourcesFile>(&dir.path().join("absent"), &fake_env).unwrap();
        assert!(none.is_empty());
        write(dir.path(), "a.yaml", "");
        write(dir.path(), "b.yml", "# nothing here\n\n");
        write(dir.path(), "c.txt", "not: yaml: at: all");
        write(dir.path(), "d.yml", "apiVersion: 1\n");
        let files = read_dir::<DatasourcesFile>(dir.path(), &fake_env).unwrap();
        assert_eq!(files.len(), 1);
        assert!(files[0].file.ends_with("d.yml"));
    }

    #[test]
    fn syntax_error_has_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.yaml", "apiVersion: 1\n");
        write(
            dir.path(),
            "b.yaml",
            "apiVersion: 1\ndatasources:\n  - name: a\n     type: b\n",
        );
        let e = read_dir::<DatasourcesFile>(dir.path(), &fake_env).unwrap_err();
        assert!(e.file.ends_with("b.yaml"));
        assert_eq!(e.line, Some(4));
        assert!(e.column.is_some());
        assert!(!e.message.contains('\n'));
        assert!(!e.message.starts_with("line "), "{}", e.message);
        assert!(!e.message.contains("at line"), "{}", e.message);
        assert!(e.to_string().contains("b.yaml:4:"), "{e}");
    }

    #[test]
    fn missing_field_has_line() {
        let e = read_one::<DatasourcesFile>(
            "apiVersion: 1\ndatasources:\n  - name: a\n    type: b\n  - type: c\n    url: x\n",
        )
        .unwrap_err();
        assert!(e.message.contains("name"), "{}", e.message);
        assert!(matches!(e.line, Some(5 | 6)), "{e}");
    }

    #[test]
    fn wrong_type_has_line() {
        let e = read_one::<DatasourcesFile>(
            "apiVersion: 1\ndatasources:\n  - name: a\n    type:\n      x: y\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        let e = read_one::<DatasourcesFile>(
            "apiVersion: 1\ndatasources:\n  - name: a\n    type: b\n    orgId: abc\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(5), "{e}");
        let e = read_one::<NotifiersFile>("apiVersion: 1\nnotifiers: nope\n").unwrap_err();
        assert_eq!(e.line, Some(2), "{e}");
    }

    #[test]
    fn api_version_checks() {
        let e = read_one::<DatasourcesFile>("datasources: []\n").unwrap_err();
        assert_eq!(e.message, "apiVersion is required");
        assert_eq!(e.line, None);
        assert!(
            e.to_string().ends_with("x.yaml: apiVersion is required"),
            "{e}"
        );
        let e = read_one::<DatasourcesFile>("\napiVersion: 0\n").unwrap_err();
        assert_eq!(e.line, Some(2));
    }

    #[test]
    fn validation_errors_point_at_the_item() {
        let e = read_one::<DatasourcesFile>(
            "apiVersion: 1\ndatasources:\n  - name: a\n    type: b\n  - name: ''\n    type: c\n",
        )
        .unwrap_err();
        assert_eq!(e.message, "datasource name is required");
        assert_eq!(e.line, Some(5));
        let e =
            read_one::<NotifiersFile>("apiVersion: 1\nnotifiers:\n  - name: n\n    type: email\n")
                .unwrap_err();
        assert!(e.message.contains("notifier uid is required"));
        assert_eq!(e.line, Some(3));
        let e = read_one::<DashboardsFile>(
            "apiVersion: 1\nproviders:\n  - name: p\n    type: git\n    options: {path: x}\n",
        )
        .unwrap_err();
        assert!(e.message.contains("not supported"));
        let e = read_one::<DashboardsFile>("apiVersion: 1\nproviders:\n  - name: p\n").unwrap_err();
        assert!(e.message.contains("options.path"));
        let e = read_one::<AccessControlFile>(
            "apiVersion: 1\nroles:\n  - name: r\n    builtInRoles: [{name: Owner}]\n",
        )
        .unwrap_err();
        assert!(e.message.contains("Owner"));
        let e =
            read_one::<AccessControlFile>("apiVersion: 1\nroles:\n  - name: r\n    state: gone\n")
                .unwrap_err();
        assert!(e.message.contains("state"));
        let e = read_one::<AccessControlFile>("apiVersion: 1\ndeleteRoles:\n  - global: true\n")
            .unwrap_err();
        assert_eq!(e.line, Some(3));
        let e = read_one::<NotifiersFile>("apiVersion: 1\ndelete_notifiers:\n  - org_id: 2\n")
            .unwrap_err();
        assert!(e.message.contains("name or a uid"));
    }

    #[test]
    fn expansion_reaches_nested_values() {
        let f: DatasourcesFile = read_one(
            "apiVersion: 1\ndatasources:\n  - name: ${A}\n    type: x\n    jsonData:\n      list: [\"$A\", {k: \"$$A\"}]\n      n: 3\n",
        )
        .unwrap();
        let ds = &f.datasources[0];
        assert_eq!(ds.name, "alpha");
        assert_eq!(ds.json_data["list"][0], "alpha");
        assert_eq!(ds.json_data["list"][1]["k"], "$A");
        assert_eq!(ds.json_data["n"], 3);
    }

    #[test]
    fn provider_defaults() {
        let f: DashboardsFile = read_one(
            "apiVersion: 1\nproviders:\n  - name: p\n    updateIntervalSeconds: 0\n    options:\n      path: /d\n",
        )
        .unwrap();
        let p = &f.providers[0];
        assert_eq!(p.kind, "file");
        assert_eq!(p.update_interval_seconds, 10);
        assert_eq!(p.org_id, 1);
        assert!(!p.prune);
    }
}

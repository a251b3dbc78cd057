//! Configuration: defaults, then `conf/server.toml` (or `--config`), then
//! `TIDEMARK_<SECTION>_<KEY>` environment variables, then command-line flags.
//! An unknown key or a bad value stops the server with a message naming it.

use std::path::{Path, PathBuf};

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration: {0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerSection {
    pub(crate) root: PathBuf,
    pub(crate) pg_listen: String,
    pub(crate) http_listen: String,
    pub(crate) max_connections: usize,
    pub(crate) statement_timeout_ms: u64,
    pub(crate) max_message_mb: u64,
    pub(crate) query_memory_mb: u64,
}

impl Default for ServerSection {
    fn default() -> Self {
        ServerSection {
            root: PathBuf::from("./data"),
            pg_listen: "127.0.0.1:8812".into(),
            http_listen: "127.0.0.1:9003".into(),
            max_connections: 100,
            statement_timeout_ms: 0,
            max_message_mb: 64,
            query_memory_mb: 4096,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct StorageSection {
    pub(crate) commit_mode: String,
    pub(crate) housekeeping_interval_ms: u64,
    pub(crate) wal_segment_mb: u64,
    pub(crate) checkpoint_free_space_warn_mb: u64,
    pub(crate) write_buffer_mb: u64,
    pub(crate) apply_interval_ms: u64,
    pub(crate) reclaim_paths_per_second: u64,
    pub(crate) mapped_files: usize,
}

impl Default for StorageSection {
    fn default() -> Self {
        StorageSection {
            commit_mode: "sync".into(),
            housekeeping_interval_ms: 1000,
            wal_segment_mb: 64,
            checkpoint_free_space_warn_mb: 1024,
            write_buffer_mb: 256,
            apply_interval_ms: 500,
            reclaim_paths_per_second: 5_000,
            mapped_files: 4096,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct AuthSection {
    pub(crate) method: String,
    pub(crate) user: String,
    pub(crate) password: String,
    pub(crate) readonly_user: String,
    pub(crate) readonly_password: String,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            method: "scram-sha-256".into(),
            user: "admin".into(),
            password: "quest".into(),
            readonly_user: String::new(),
            readonly_password: String::new(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TlsSection {
    pub(crate) enabled: bool,
    pub(crate) cert_file: PathBuf,
    pub(crate) key_file: PathBuf,
    pub(crate) required: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct IlpSection {
    /// TCP address for line protocol; `None` means the default, which may be
    /// taken by another process (then TCP ingest is off, with a warning);
    /// `""` turns it off.
    pub(crate) listen: Option<String>,
    pub(crate) auto_create_tables: bool,
    pub(crate) auto_create_columns: bool,
    pub(crate) partition_by: String,
    pub(crate) max_request_mb: u64,
    pub(crate) max_line_kb: u64,
    pub(crate) tcp_batch_kb: u64,
    pub(crate) tcp_commit_interval_ms: u64,
}

/// Where line protocol over TCP listens unless `ilp.listen` says otherwise.
pub(crate) const DEFAULT_ILP_LISTEN: &str = "127.0.0.1:9009";

impl Default for IlpSection {
    fn default() -> Self {
        IlpSection {
            listen: None,
            auto_create_tables: true,
            auto_create_columns: true,
            partition_by: "DAY".into(),
            max_request_mb: 64,
            max_line_kb: 1024,
            tcp_batch_kb: 1024,
            tcp_commit_interval_ms: 100,
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct LogSection {
    pub(crate) level: String,
    pub(crate) format: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            level: "info".into(),
            format: "text".into(),
        }
    }
}

/// Built-in backups (`BACKUP DATABASE`, `tidemark restore`).
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct BackupSection {
    /// `file:///dir` or `s3://bucket/prefix`; "" turns BACKUP DATABASE off.
    pub(crate) destination: String,
    pub(crate) s3_endpoint: String,
    pub(crate) s3_region: String,
    pub(crate) s3_access_key_id: String,
    pub(crate) s3_secret_access_key: String,
    pub(crate) s3_allow_http: bool,
    pub(crate) s3_virtual_hosted_style: bool,
    pub(crate) concurrency: u64,
    pub(crate) max_mb_per_second: f64,
    /// Ship every commit to `<destination>/log/` (point-in-time restore).
    pub(crate) log_backup: bool,
    pub(crate) log_flush_interval_ms: u64,
    /// Days of restorable history kept after each backup (0: keep everything).
    pub(crate) retention_days: u64,
}

impl Default for BackupSection {
    fn default() -> Self {
        BackupSection {
            destination: String::new(),
            s3_endpoint: String::new(),
            s3_region: String::new(),
            s3_access_key_id: String::new(),
            s3_secret_access_key: String::new(),
            s3_allow_http: false,
            s3_virtual_hosted_style: false,
            concurrency: 4,
            max_mb_per_second: 0.0,
            log_backup: false,
            log_flush_interval_ms: 1000,
            retention_days: 0,
        }
    }
}

impl std::fmt::Debug for BackupSection {
    // The secret stays out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupSection")
            .field("destination", &self.destination)
            .field("s3_endpoint", &self.s3_endpoint)
            .field("concurrency", &self.concurrency)
            .field("max_mb_per_second", &self.max_mb_per_second)
            .field("log_backup", &self.log_backup)
            .field("log_flush_interval_ms", &self.log_flush_interval_ms)
            .field("retention_days", &self.retention_days)
            .finish_non_exhaustive()
    }
}

impl BackupSection {
    pub(crate) fn s3(&self) -> tidemark_backup::S3Options {
        tidemark_backup::S3Options {
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            access_key_id: self.s3_access_key_id.clone(),
            secret_access_key: self.s3_secret_access_key.clone(),
            allow_http: self.s3_allow_http,
            virtual_hosted_style: self.s3_virtual_hosted_style,
        }
    }

    pub(crate) fn options(&self) -> tidemark_backup::BackupOptions {
        tidemark_backup::BackupOptions {
            concurrency: usize::try_from(self.concurrency).unwrap_or(64),
            max_bytes_per_second: (self.max_mb_per_second * 1_048_576.0) as u64,
            log_flush_interval: self
                .log_backup
                .then(|| std::time::Duration::from_millis(self.log_flush_interval_ms)),
            retention: (self.retention_days > 0)
                .then(|| std::time::Duration::from_secs(self.retention_days * 86_400)),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct Config {
    pub(crate) server: ServerSection,
    pub(crate) storage: StorageSection,
    pub(crate) auth: AuthSection,
    pub(crate) tls: TlsSection,
    pub(crate) ilp: IlpSection,
    pub(crate) log: LogSection,
    pub(crate) backup: BackupSection,
    /// Where each key not left at its default came from (`section.key` to
    /// `conf`, `env` or `command line`), for SHOW PARAMETERS.
    #[serde(skip)]
    pub(crate) origins: HashMap<String, &'static str>,
}

const SECTIONS: [&str; 7] = ["server", "storage", "auth", "tls", "ilp", "log", "backup"];
/// Keys that may also be given as `TIDEMARK_<SECTION>_<KEY>_FILE`, a file
/// holding the value (Docker and Kubernetes secrets).
const SECRET_KEYS: [(&str, &str); 3] = [
    ("auth", "password"),
    ("auth", "readonly_password"),
    ("backup", "s3_secret_access_key"),
];

impl Config {
    /// Loads `file` (if given, or `conf/server.toml` when it exists) and applies
    /// the environment variables in `env`.
    pub(crate) fn load(
        file: Option<&Path>,
        env: impl Iterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let default_file = Path::new("conf/server.toml");
        let file = file.or_else(|| default_file.exists().then_some(default_file));
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.into(),
                    source,
                })?;
                text.parse::<toml::Table>()
                    .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?
            }
            None => toml::Table::new(),
        };
        let mut origins = HashMap::new();
        for (section, keys) in &table {
            if let toml::Value::Table(keys) = keys {
                for key in keys.keys() {
                    origins.insert(format!("{section}.{key}"), "conf");
                }
            }
        }
        let env: Vec<(String, String)> = env.collect();
        for (section, secret) in SECRET_KEYS {
            let plain = format!(
                "TIDEMARK_{}_{}",
                section.to_ascii_uppercase(),
                secret.to_ascii_uppercase()
            );
            let file = format!("{plain}_FILE");
            if env.iter().any(|(k, _)| *k == plain) && env.iter().any(|(k, _)| *k == file) {
                return Err(ConfigError::Invalid(format!(
                    "{plain} and {file} are both set: set only one (the file is for Docker and Kubernetes secrets)"
                )));
            }
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("TIDEMARK_") else {
                continue;
            };
            let rest = rest.to_ascii_lowercase();
            let Some((section, key)) = SECTIONS.iter().find_map(|s| {
                rest.strip_prefix(&format!("{s}_"))
                    .map(|k| (*s, k.to_string()))
            }) else {
                return Err(ConfigError::Invalid(format!(
                    "environment variable {name}: unknown section (expected TIDEMARK_<{}>_<KEY>)",
                    SECTIONS.map(str::to_uppercase).join("|")
                )));
            };
            // `TIDEMARK_AUTH_PASSWORD_FILE=/run/secrets/x`: the secret is the file's
            // content (Docker and Kubernetes secrets), without its final newline.
            if let Some(secret) = key
                .strip_suffix("_file")
                .filter(|k| SECRET_KEYS.contains(&(section, *k)))
            {
                let text = std::fs::read_to_string(&value).map_err(|source| {
                    ConfigError::Invalid(format!("{name}: cannot read {value}: {source}"))
                })?;
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let text = text.strip_suffix('\r').unwrap_or(text);
                if text.is_empty() {
                    return Err(ConfigError::Invalid(format!(
                        "{name}: {value} is empty: it must hold the {}",
                        if section == "auth" {
                            "password (or its SCRAM verifier)"
                        } else {
                            "secret"
                        }
                    )));
                }
                let entry = table
                    .entry(section)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                if let toml::Value::Table(t) = entry {
                    t.insert(secret.to_string(), toml::Value::String(text.to_string()));
                }
                origins.insert(format!("{section}.{secret}"), "env");
                continue;
            }
            // A value that parses as TOML (a number, a boolean) is taken as such, else as text.
            let parsed = format!("v = {value}")
                .parse::<toml::Table>()
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or(toml::Value::String(value));
            let entry = table
                .entry(section)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            origins.insert(format!("{section}.{key}"), "env");
            if let toml::Value::Table(t) = entry {
                t.insert(key, parsed);
            }
        }
        let mut config: Config = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::Invalid(e.message().to_string()))?;
        config.check()?;
        config.origins = origins;
        Ok(config)
    }

    /// Every key with the value in force and where it came from, as SHOW
    /// PARAMETERS lists them (secrets are marked, and never shown).
    pub(crate) fn parameters(&self) -> Vec<tidemark_executor::ServerParameter> {
        let Ok(serde_json::Value::Object(sections)) = serde_json::to_value(self) else {
            return Vec::new();
        };
        let mut parameters = Vec::new();
        for section in SECTIONS {
            let Some(serde_json::Value::Object(keys)) = sections.get(section) else {
                continue;
            };
            for (key, value) in keys {
                let property_path = format!("{section}.{key}");
                let value_source = self
                    .origins
                    .get(&property_path)
                    .copied()
                    .unwrap_or("default");
                parameters.push(tidemark_executor::ServerParameter {
                    env_var_name: format!(
                        "TIDEMARK_{}_{}",
                        section.to_ascii_uppercase(),
                        key.to_ascii_uppercase()
                    ),
                    value: match value {
                        serde_json::Value::Null => None,
                        serde_json::Value::String(s) => Some(s.clone()),
                        other => Some(other.to_string()),
                    },
                    value_source,
                    sensitive: SECRET_KEYS.contains(&(section, key.as_str())),
                    property_path,
                });
            }
        }
        parameters
    }

    fn check(&self) -> Result<(), ConfigError> {
        if self.auth.password.is_empty() {
            return Err(ConfigError::Invalid(
                "auth.password is empty: nobody could log in (set a password or its SCRAM verifier)".into(),
            ));
        }
        self.storage
            .commit_mode
            .parse::<tidemark_storage::CommitMode>()
            .map_err(|e| ConfigError::Invalid(format!("storage.commit_mode: {e}")))?;
        if !["scram-sha-256", "md5", "cleartext"].contains(&self.auth.method.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "auth.method: \"{}\" is not supported: expected scram-sha-256, md5 or cleartext",
                self.auth.method
            )));
        }
        for (key, value, example) in [
            ("server.pg_listen", &self.server.pg_listen, "127.0.0.1:8812"),
            (
                "server.http_listen",
                &self.server.http_listen,
                "127.0.0.1:9003",
            ),
        ] {
            if value.parse::<std::net::SocketAddr>().is_err() {
                return Err(ConfigError::Invalid(format!(
                    "{key}: \"{value}\" is not an address: expected HOST:PORT, e.g. {example}"
                )));
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return Err(ConfigError::Invalid(format!(
                "log.level: \"{}\" is not a log filter ({e}): expected error, warn, info, debug, trace \
                 or per module, e.g. \"info,tidemark_storage=debug\"",
                self.log.level
            )));
        }
        if !["text", "json"].contains(&self.log.format.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "log.format: \"{}\" is not supported: expected text or json",
                self.log.format
            )));
        }
        if self.server.max_message_mb == 0 || self.server.max_message_mb > 1023 {
            return Err(ConfigError::Invalid(
                "server.max_message_mb must be between 1 and 1023".into(),
            ));
        }
        if self.server.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "server.max_connections must be at least 1".into(),
            ));
        }
        if self.auth.user.is_empty() {
            return Err(ConfigError::Invalid("auth.user must not be empty".into()));
        }
        if !self.auth.readonly_user.is_empty()
            && (self.auth.readonly_user == self.auth.user || self.auth.readonly_password.is_empty())
        {
            return Err(ConfigError::Invalid(
                "auth.readonly_user needs its own name and auth.readonly_password".into(),
            ));
        }
        if (self.tls.enabled || self.tls.required)
            && (self.tls.cert_file.as_os_str().is_empty()
                || self.tls.key_file.as_os_str().is_empty())
        {
            return Err(ConfigError::Invalid(
                "tls.enabled and tls.required need tls.cert_file and tls.key_file".into(),
            ));
        }
        if let Some(listen) = self.ilp.listen.as_deref().filter(|l| !l.is_empty())
            && listen.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(ConfigError::Invalid(format!(
                "ilp.listen: \"{listen}\" is not an address: expected HOST:PORT, e.g. {DEFAULT_ILP_LISTEN}, or \"\" for off"
            )));
        }
        if crate::ilp::parse_partition_by(&self.ilp.partition_by).is_none() {
            return Err(ConfigError::Invalid(format!(
                "ilp.partition_by: \"{}\" is not one of NONE, HOUR, DAY, WEEK, MONTH, YEAR",
                self.ilp.partition_by
            )));
        }
        for (key, value, max) in [
            ("max_request_mb", self.ilp.max_request_mb, 1023),
            ("max_line_kb", self.ilp.max_line_kb, 1 << 20),
            ("tcp_batch_kb", self.ilp.tcp_batch_kb, 1 << 20),
            (
                "tcp_commit_interval_ms",
                self.ilp.tcp_commit_interval_ms,
                3_600_000,
            ),
        ] {
            if value == 0 || value > max {
                return Err(ConfigError::Invalid(format!(
                    "ilp.{key} must be between 1 and {max}"
                )));
            }
        }
        if !self.backup.destination.is_empty() {
            tidemark_backup::Destination::check_url(&self.backup.destination)
                .map_err(|e| ConfigError::Invalid(format!("backup.destination: {e}")))?;
        }
        if self.backup.log_backup && self.backup.destination.is_empty() {
            return Err(ConfigError::Invalid(
                "backup.log_backup needs backup.destination (where the log goes)".into(),
            ));
        }
        if self.backup.log_flush_interval_ms == 0 || self.backup.log_flush_interval_ms > 3_600_000 {
            return Err(ConfigError::Invalid(
                "backup.log_flush_interval_ms must be between 1 and 3600000".into(),
            ));
        }
        if self.backup.retention_days > 36_500 {
            return Err(ConfigError::Invalid(
                "backup.retention_days must be between 0 (keep everything) and 36500".into(),
            ));
        }
        if self.backup.concurrency == 0 || self.backup.concurrency > 64 {
            return Err(ConfigError::Invalid(
                "backup.concurrency must be between 1 and 64".into(),
            ));
        }
        if !(self.backup.max_mb_per_second >= 0.0 && self.backup.max_mb_per_second.is_finite()) {
            return Err(ConfigError::Invalid(
                "backup.max_mb_per_second must be 0 (no limit) or a positive number".into(),
            ));
        }
        for (key, value) in [
            ("wal_segment_mb", self.storage.wal_segment_mb),
            (
                "housekeeping_interval_ms",
                self.storage.housekeeping_interval_ms,
            ),
            ("write_buffer_mb", self.storage.write_buffer_mb),
            ("apply_interval_ms", self.storage.apply_interval_ms),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!(
                    "storage.{key} must be positive"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(v: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn defaults_file_and_environment_layer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("c.toml");
        std::fs::write(
            &f,
            "[server]\nroot = \"/srv/t\"\n[storage]\ncommit_mode = \"async\"\n",
        )
        .expect("write");
        let c = Config::load(
            Some(&f),
            env(&[("TIDEMARK_STORAGE_WAL_SEGMENT_MB", "8"), ("PATH", "/bin")]),
        )
        .expect("load");
        assert_eq!(c.server.root, PathBuf::from("/srv/t"));
        assert_eq!(c.server.pg_listen, "127.0.0.1:8812");
        assert_eq!(c.storage.commit_mode, "async");
        assert_eq!(c.storage.wal_segment_mb, 8);
        assert_eq!(
            (c.auth.user.as_str(), c.auth.password.as_str()),
            ("admin", "quest")
        );
        // SHOW PARAMETERS says where each value came from; secrets are marked.
        let parameters = c.parameters();
        let find = |path: &str| {
            parameters
                .iter()
                .find(|p| p.property_path == path)
                .unwrap_or_else(|| panic!("{path}"))
        };
        assert_eq!(find("server.root").value_source, "conf");
        assert_eq!(find("storage.wal_segment_mb").value_source, "env");
        assert_eq!(find("storage.wal_segment_mb").value.as_deref(), Some("8"));
        assert_eq!(find("server.pg_listen").value_source, "default");
        assert!(find("auth.password").sensitive && !find("auth.user").sensitive);
        assert_eq!(find("ilp.listen").value, None);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "[server]\nrot = \"x\"\n").expect("write");
        let e = Config::load(Some(&f), env(&[])).expect_err("unknown key");
        assert!(e.to_string().contains("rot"), "{e}");
        let e = Config::load(None, env(&[("TIDEMARK_STORAGE_COMMIT_MODE", "sometimes")]))
            .expect_err("bad value");
        assert!(
            e.to_string().contains("storage.commit_mode") && e.to_string().contains("sometimes"),
            "{e}"
        );
        let e = Config::load(None, env(&[("TIDEMARK_NOPE_X", "1")])).expect_err("bad section");
        assert!(e.to_string().contains("TIDEMARK_NOPE_X"), "{e}");
        let e = Config::load(None, env(&[("TIDEMARK_SERVER_PG_LISTEN", "here")]))
            .expect_err("bad address");
        assert!(e.to_string().contains("server.pg_listen"), "{e}");
    }

    #[test]
    fn passwords_can_come_from_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "s3cret from a file\n").expect("write");
        let path = secret.display().to_string();
        let c = Config::load(
            None,
            env(&[
                ("TIDEMARK_AUTH_PASSWORD_FILE", &path),
                ("TIDEMARK_AUTH_READONLY_USER", "reader"),
                ("TIDEMARK_AUTH_READONLY_PASSWORD_FILE", &path),
            ]),
        )
        .expect("load");
        assert_eq!(c.auth.password, "s3cret from a file");
        assert_eq!(c.auth.readonly_password, "s3cret from a file");
        let e = Config::load(
            None,
            env(&[("TIDEMARK_AUTH_PASSWORD_FILE", "/no/such/file")]),
        )
        .expect_err("missing file");
        assert!(
            e.to_string().contains("TIDEMARK_AUTH_PASSWORD_FILE")
                && e.to_string().contains("/no/such/file"),
            "{e}"
        );
        // An empty file (a secret that was never filled in) stops the start.
        let empty = dir.path().join("empty");
        std::fs::write(&empty, "\n").expect("write");
        let e = Config::load(
            None,
            env(&[("TIDEMARK_AUTH_PASSWORD_FILE", &empty.display().to_string())]),
        )
        .expect_err("empty file");
        assert!(e.to_string().contains("is empty"), "{e}");
        // Both forms at once: which one wins would be a guess, so neither does.
        let e = Config::load(
            None,
            env(&[
                ("TIDEMARK_AUTH_PASSWORD", "plain"),
                ("TIDEMARK_AUTH_PASSWORD_FILE", &path),
            ]),
        )
        .expect_err("both set");
        assert!(e.to_string().contains("both set"), "{e}");
        // The environment overrides the configuration file.
        let conf = dir.path().join("server.toml");
        std::fs::write(&conf, "[auth]\npassword = \"from-the-file\"\n").expect("write");
        let c = Config::load(Some(&conf), env(&[])).expect("load");
        assert_eq!(c.auth.password, "from-the-file");
        let c = Config::load(Some(&conf), env(&[("TIDEMARK_AUTH_PASSWORD_FILE", &path)]))
            .expect("load");
        assert_eq!(c.auth.password, "s3cret from a file");
        std::fs::write(&conf, "[auth]\npassword = \"\"\n").expect("write");
        let e = Config::load(Some(&conf), env(&[])).expect_err("empty password");
        assert!(e.to_string().contains("auth.password is empty"), "{e}");
        // Only secrets have a _FILE form: TLS paths are file names already.
        let c =
            Config::load(None, env(&[("TIDEMARK_TLS_CERT_FILE", "/etc/cert.pem")])).expect("load");
        assert_eq!(c.tls.cert_file, PathBuf::from("/etc/cert.pem"));
    }

    #[test]
    fn the_shipped_configuration_is_the_defaults() {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conf/server.toml");
        let c = Config::load(Some(&shipped), env(&[])).expect("conf/server.toml loads");
        let d = Config::default();
        assert_eq!(format!("{:?}", c.ilp), format!("{:?}", d.ilp));
        assert_eq!(format!("{:?}", c.storage), format!("{:?}", d.storage));
        assert_eq!(c.server.http_listen, d.server.http_listen);
    }

    #[test]
    fn line_protocol_keys_are_checked() {
        let c = Config::load(
            None,
            env(&[
                ("TIDEMARK_ILP_LISTEN", ""),
                ("TIDEMARK_ILP_PARTITION_BY", "hour"),
                ("TIDEMARK_ILP_AUTO_CREATE_COLUMNS", "false"),
            ]),
        )
        .expect("valid");
        assert_eq!(c.ilp.listen.as_deref(), Some(""));
        assert!(!c.ilp.auto_create_columns);
        for (key, value, named) in [
            ("TIDEMARK_ILP_LISTEN", "nowhere", "ilp.listen"),
            ("TIDEMARK_ILP_PARTITION_BY", "FORTNIGHT", "ilp.partition_by"),
            ("TIDEMARK_ILP_MAX_REQUEST_MB", "0", "ilp.max_request_mb"),
            ("TIDEMARK_ILP_TCP_BATCH_KB", "0", "ilp.tcp_batch_kb"),
        ] {
            let e = Config::load(None, env(&[(key, value)])).expect_err(key);
            assert!(e.to_string().contains(named), "{key}: {e}");
        }
    }

    #[test]
    fn backup_keys_are_checked_and_the_secret_may_come_from_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("s3");
        std::fs::write(&secret, "s3cr3t\n").expect("write");
        let c = Config::load(
            None,
            env(&[
                ("TIDEMARK_BACKUP_DESTINATION", "s3://bucket/prefix"),
                ("TIDEMARK_BACKUP_MAX_MB_PER_SECOND", "2"),
                (
                    "TIDEMARK_BACKUP_S3_SECRET_ACCESS_KEY_FILE",
                    &secret.display().to_string(),
                ),
            ]),
        )
        .expect("load");
        assert_eq!(c.backup.s3_secret_access_key, "s3cr3t");
        assert_eq!(c.backup.options().max_bytes_per_second, 2 << 20);
        assert!(
            !format!("{:?}", c.backup).contains("s3cr3t"),
            "the secret stays out of logs"
        );
        for (key, value, named) in [
            (
                "TIDEMARK_BACKUP_DESTINATION",
                "ftp://host/x",
                "backup.destination",
            ),
            (
                "TIDEMARK_BACKUP_DESTINATION",
                "s3:///x",
                "backup.destination",
            ),
            ("TIDEMARK_BACKUP_CONCURRENCY", "0", "backup.concurrency"),
            ("TIDEMARK_BACKUP_LOG_BACKUP", "true", "backup.log_backup"),
            (
                "TIDEMARK_BACKUP_RETENTION_DAYS",
                "100000",
                "backup.retention_days",
            ),
            (
                "TIDEMARK_BACKUP_LOG_FLUSH_INTERVAL_MS",
                "0",
                "backup.log_flush_interval_ms",
            ),
            (
                "TIDEMARK_BACKUP_MAX_MB_PER_SECOND",
                "-1",
                "backup.max_mb_per_second",
            ),
        ] {
            let e = Config::load(None, env(&[(key, value)])).expect_err(key);
            assert!(e.to_string().contains(named), "{key}={value}: {e}");
        }
    }

    #[test]
    fn log_level_and_format_are_checked() {
        let c = Config::load(None, env(&[("TIDEMARK_LOG_FORMAT", "json")])).expect("load");
        assert_eq!(c.log.format, "json");
        let e = Config::load(None, env(&[("TIDEMARK_LOG_FORMAT", "xml")])).expect_err("format");
        assert!(
            e.to_string().contains("log.format") && e.to_string().contains("xml"),
            "{e}"
        );
        let e =
            Config::load(None, env(&[("TIDEMARK_LOG_LEVEL", "tidemark=loud")])).expect_err("level");
        assert!(e.to_string().contains("log.level"), "{e}");
    }
}

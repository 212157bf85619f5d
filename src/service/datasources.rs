//! Datasources, the first consumer of the secrets service: `secureJsonData` is write-only
//! and stored only encrypted (one secret per field, bound to the datasource and field), in
//! the same transaction as the row; reads report which secure fields are set.

use std::collections::BTreeMap;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::crypto::envelope::SecretContext;
use crate::crypto::random;
use crate::domain::time::Clock;
use crate::domain::Action;
use crate::domain::{AuthKind, OrgId, Principal};
use crate::error::AppError;
use crate::service::quotas::QuotaService;
use crate::service::secrets::SecretsService;
use crate::store::{DataSourceRecord, DataSourceStore, SecretWrite, StoreError};

pub const NOT_FOUND: &str = "Data source not found";

/// Fields a caller sets (create and update).
#[derive(Debug, Clone, Default)]
pub struct DataSourceInput {
    pub name: String,
    pub ds_type: String,
    pub uid: Option<String>,
    pub access: String,
    pub url: String,
    pub user: String,
    pub database: String,
    pub basic_auth: bool,
    pub basic_auth_user: String,
    pub with_credentials: bool,
    pub is_default: bool,
    pub json_data: Option<String>,
    pub secure_json_data: BTreeMap<String, String>,
    /// Optimistic concurrency on update: the version the caller read.
    pub version: Option<u64>,
    pub read_only: bool,
}

pub struct DataSourceService {
    store: Arc<dyn DataSourceStore>,
    secrets: Arc<SecretsService>,
    quotas: Arc<QuotaService>,
    clock: Arc<dyn Clock>,
}

fn ctx<'a>(owner: &'a str, field: &'a str) -> SecretContext<'a> {
    SecretContext {
        purpose: "datasource",
        owner,
        field,
    }
}

/// The secret owner of a datasource: its org and uid (stable across renames).
fn owner(ds: &DataSourceRecord) -> String {
    format!("{}/{}", ds.org_id, ds.uid)
}

fn valid_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 40
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

const STALE: &str =
    "Datasource has already been updated by someone else. Please reload and try again";

fn conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Stale(_) => AppError::Conflict(STALE.into()),
        StoreError::Conflict("uid") => {
            AppError::Conflict("Data source with the same uid already exists".into())
        }
        StoreError::Conflict(_) => {
            AppError::Conflict("Data source with the same name already exists".into())
        }
        StoreError::NotFound => AppError::not_found(NOT_FOUND),
        other => AppError::internal("Failed to save datasource", other),
    }
}

/// Grafana's answer to an update that loses to a name already taken, a stale version or a
/// vanished row (its update handler words the name conflict differently from create's).
fn update_conflict(e: StoreError) -> AppError {
    match e {
        StoreError::Conflict("name") => AppError::Conflict(
            "Failed to update datasource: data source with the same name already exists".into(),
        ),
        StoreError::Unavailable(cause) => AppError::Unavailable(cause),
        StoreError::Stale(_) | StoreError::NotFound | StoreError::Conflict(_) => conflict(e),
        other => AppError::internal("Failed to update datasource", other),
    }
}

/// Types whose URL Grafana requires (`requiredURL` in `pkg/api/datasource/validation.go`).
const URL_REQUIRED: &[&str] = &[
    "graphite",
    "influxdb",
    "influxdb_08",
    "elasticsearch",
    "prometheus",
    "alertmanager",
    "jaeger",
    "loki",
    "opentsdb",
    "tempo",
    "zipkin",
    "mysql",
    "postgres",
    "grafana-postgresql-datasource",
    "mssql",
];

pub const INVALID_URL: &str = "Validation error, invalid URL";

/// Grafana's `ValidateURL`, which its HTTP handlers run (on update always, on create when a
/// URL is given; provisioning does not): an empty URL for a type that needs one, or one Go's
/// `url.Parse` refuses once `http://` is put in front of a URL without a scheme. The parse
/// refusals reproduced: a control character, `://` with no scheme, a bad `%` escape, a
/// character a host may not hold, an unclosed `[`, a port that is not digits.
pub fn validate_url(ds_type: &str, url: &str) -> Result<(), AppError> {
    let invalid = || AppError::bad_request(INVALID_URL);
    if URL_REQUIRED.contains(&ds_type) && url.trim().is_empty() {
        return Err(invalid());
    }
    if url.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(invalid());
    }
    let (url, fragment) = url.split_once('#').unwrap_or((url, ""));
    // Grafana's `^[^:]*://`; a URL without it gets `http://` in front, so what follows
    // starts with the authority either way.
    let after_scheme = match url.find("://") {
        Some(i) if !url[..i].contains(':') => {
            let scheme = &url.as_bytes()[..i];
            let valid = scheme.first().is_some_and(u8::is_ascii_alphabetic)
                && scheme
                    .iter()
                    .all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(c));
            if !valid {
                return Err(invalid());
            }
            &url[i + 3..]
        }
        _ => url,
    };
    // Go does not check the query.
    let rest = after_scheme
        .split_once('?')
        .map_or(after_scheme, |(r, _)| r);
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if escapes_ok(fragment) && escapes_ok(path) && authority_ok(authority) {
        Ok(())
    } else {
        Err(invalid())
    }
}

/// Every `%` starts two hex digits.
fn escapes_ok(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            if i + 2 >= b.len() || !(b[i + 1].is_ascii_hexdigit() && b[i + 2].is_ascii_hexdigit()) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Go's `parseAuthority`: user info, then a host (bracketed or not) and an optional port.
fn authority_ok(authority: &str) -> bool {
    let host = match authority.rfind('@') {
        Some(i) => {
            let user = &authority[..i];
            if !user
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-._:~!$&'()*+,;=%@".contains(&c))
                || !escapes_ok(user)
            {
                return false;
            }
            &authority[i + 1..]
        }
        None => authority,
    };
    let digits = |p: &str| p.bytes().all(|c| c.is_ascii_digit());
    let name = if let Some(inner) = host.strip_prefix('[') {
        let Some(end) = inner.rfind(']') else {
            return false;
        };
        let after = &inner[end + 1..];
        if !after.is_empty() && !after.strip_prefix(':').is_some_and(digits) {
            return false;
        }
        &inner[..end]
    } else {
        match host.rfind(':') {
            Some(i) if !digits(&host[i + 1..]) => return false,
            Some(i) => &host[..i],
            None => host,
        }
    };
    name.bytes()
        .all(|c| c >= 0x80 || c.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"%".contains(&c))
        && escapes_ok(name)
}

impl DataSourceService {
    pub fn new(
        store: Arc<dyn DataSourceStore>,
        secrets: Arc<SecretsService>,
        quotas: Arc<QuotaService>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            store,
            secrets,
            quotas,
            clock,
        }
    }

    fn validate(input: &DataSourceInput) -> Result<(), AppError> {
        let name = input.name.trim();
        if name.is_empty() || name.chars().count() > 190 || name.chars().any(char::is_control) {
            return Err(AppError::bad_request("Name is invalid"));
        }
        if input.ds_type.trim().is_empty() || input.ds_type.len() > 255 {
            return Err(AppError::bad_request("Type is invalid"));
        }
        if let Some(uid) = &input.uid {
            if !uid.is_empty() && !valid_uid(uid) {
                return Err(AppError::bad_request(
                    "Invalid UID: only letters, digits, - and _, at most 40",
                ));
            }
        }
        if input
            .secure_json_data
            .keys()
            .any(|k| k.is_empty() || k.contains('\n'))
        {
            return Err(AppError::bad_request("Invalid secureJsonData field name"));
        }
        Ok(())
    }

    async fn secret_writes(
        &self,
        ds: &DataSourceRecord,
        values: &BTreeMap<String, String>,
    ) -> Result<Vec<SecretWrite>, AppError> {
        let owner = owner(ds);
        let mut writes = Vec::with_capacity(values.len());
        for (field, value) in values {
            writes.push(self.secrets.seal_write(&ctx(&owner, field), value).await?);
        }
        Ok(writes)
    }

    pub async fn create(
        &self,
        p: &Principal,
        input: DataSourceInput,
    ) -> Result<DataSourceRecord, AppError> {
        p.require(Action::DatasourcesCreate, "")?;
        self.quotas.check(p, "data_source").await?;
        Self::validate(&input)?;
        let at = self.clock.now();
        let mut ds = DataSourceRecord {
            id: 0,
            uid: input
                .uid
                .clone()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(random::short_uid),
            org_id: p.org_id.0,
            name: input.name.trim().to_string(),
            ds_type: input.ds_type.trim().to_string(),
            access: if input.access.is_empty() {
                "proxy".into()
            } else {
                input.access.clone()
            },
            url: input.url.clone(),
            user: input.user.clone(),
            database: input.database.clone(),
            basic_auth: input.basic_auth,
            basic_auth_user: input.basic_auth_user.clone(),
            with_credentials: input.with_credentials,
            is_default: input.is_default,
            json_data: input.json_data.clone().unwrap_or_else(|| "{}".into()),
            secure_fields: input.secure_json_data.keys().cloned().collect(),
            version: 1,
            read_only: input.read_only,
            created: at,
            updated: at,
        };
        let writes = self.secret_writes(&ds, &input.secure_json_data).await?;
        ds = self
            .store
            .create_datasource(ds, &writes)
            .await
            .map_err(conflict)?;
        Ok(ds)
    }

    fn scoped(
        &self,
        p: &Principal,
        ds: Option<DataSourceRecord>,
        action: Action,
    ) -> Result<DataSourceRecord, AppError> {
        p.require(action, "")?;
        let ds = ds
            .filter(|d| d.org_id == p.org_id.0)
            .ok_or_else(|| AppError::not_found(NOT_FOUND))?;
        p.require(action, &format!("datasources:uid:{}", ds.uid))?;
        Ok(ds)
    }

    pub async fn get(&self, p: &Principal, id: u64) -> Result<DataSourceRecord, AppError> {
        self.scoped(
            p,
            self.store.datasource(p.org_id, id).await?,
            Action::DatasourcesRead,
        )
    }

    pub async fn get_by_uid(&self, p: &Principal, uid: &str) -> Result<DataSourceRecord, AppError> {
        self.scoped(
            p,
            self.store.datasource_by_uid(p.org_id, uid).await?,
            Action::DatasourcesRead,
        )
    }

    pub async fn get_by_name(
        &self,
        p: &Principal,
        name: &str,
    ) -> Result<DataSourceRecord, AppError> {
        self.scoped(
            p,
            self.store.datasource_by_name(p.org_id, name).await?,
            Action::DatasourcesRead,
        )
    }

    pub async fn list(&self, p: &Principal) -> Result<Vec<DataSourceRecord>, AppError> {
        p.require(Action::DatasourcesRead, "")?;
        let mut all = self.store.datasources(OrgId(p.org_id.0)).await?;
        all.retain(|d| {
            p.permissions.has(
                Action::DatasourcesRead,
                &format!("datasources:uid:{}", d.uid),
            )
        });
        Ok(all)
    }

    /// Replaces a datasource's settings. Secure fields given are replaced; those not given
    /// are kept (Grafana's behaviour). The store applies the change only to the version
    /// read here: a caller who named a version gets 409 when another update won; a caller
    /// who did not (Grafana then overwrites) retries on the newer row.
    pub async fn update(
        &self,
        p: &Principal,
        id: u64,
        input: DataSourceInput,
    ) -> Result<DataSourceRecord, AppError> {
        self.update_by(p, DataSourceRef::Id(id), input).await
    }

    /// [`Self::update`] for the datasource with this uid (`PUT /api/datasources/uid/:uid`).
    pub async fn update_by_uid(
        &self,
        p: &Principal,
        uid: &str,
        input: DataSourceInput,
    ) -> Result<DataSourceRecord, AppError> {
        self.update_by(p, DataSourceRef::Uid(uid), input).await
    }

    async fn update_by(
        &self,
        p: &Principal,
        by: DataSourceRef<'_>,
        input: DataSourceInput,
    ) -> Result<DataSourceRecord, AppError> {
        Self::validate(&input)?;
        let mut attempts = 0;
        loop {
            match self.update_once(p, by, input.clone()).await {
                Err(AppError::Conflict(m))
                    if m == STALE && input.version.unwrap_or(0) == 0 && attempts < 3 =>
                {
                    attempts += 1;
                }
                other => return other,
            }
        }
    }

    async fn update_once(
        &self,
        p: &Principal,
        by: DataSourceRef<'_>,
        input: DataSourceInput,
    ) -> Result<DataSourceRecord, AppError> {
        let old = self.scoped(
            p,
            self.lookup(p.org_id, by).await?,
            Action::DatasourcesWrite,
        )?;
        // Provisioning (system work) owns read-only datasources.
        if old.read_only && p.kind != AuthKind::System {
            return Err(AppError::Forbidden(
                "Cannot update read-only data source".into(),
            ));
        }
        // Grafana's rule: a version at least the stored one wins (a client may force an
        // update with a higher number, as provisioning does); a lower one is stale. The
        // write itself still compares with the version read here, so a change that lands
        // in between is never overwritten.
        if let Some(v) = input.version {
            if v != 0 && v < old.version {
                return Err(AppError::Conflict(STALE.into()));
            }
        }
        let mut ds = old.clone();
        ds.name = input.name.trim().to_string();
        ds.ds_type = input.ds_type.trim().to_string();
        // The uid is part of each secret's AAD binding: it does not change.
        if input
            .uid
            .as_deref()
            .is_some_and(|u| !u.is_empty() && u != old.uid)
        {
            return Err(AppError::bad_request(format!(
                "Cannot change the uid of data source '{}'",
                old.uid
            )));
        }
        ds.access = if input.access.is_empty() {
            old.access.clone()
        } else {
            input.access
        };
        ds.url = input.url;
        ds.user = input.user;
        ds.database = input.database;
        ds.basic_auth = input.basic_auth;
        ds.basic_auth_user = input.basic_auth_user;
        ds.with_credentials = input.with_credentials;
        ds.is_default = input.is_default;
        ds.json_data = input.json_data.unwrap_or_else(|| "{}".into());
        for field in input.secure_json_data.keys() {
            if !ds.secure_fields.contains(field) {
                ds.secure_fields.push(field.clone());
            }
        }
        ds.secure_fields.sort();
        ds.updated = self.clock.now();
        let writes = self.secret_writes(&ds, &input.secure_json_data).await?;
        self.store
            .update_datasource(&ds, old.version, &writes)
            .await
            .map_err(update_conflict)
    }

    pub async fn delete(
        &self,
        p: &Principal,
        ds: DataSourceRecord,
    ) -> Result<DataSourceRecord, AppError> {
        let ds = self.scoped(p, Some(ds), Action::DatasourcesDelete)?;
        if ds.read_only && p.kind != AuthKind::System {
            return Err(AppError::Forbidden(
                "Cannot delete read-only data source".into(),
            ));
        }
        let owner = owner(&ds);
        let writes: Vec<SecretWrite> = ds
            .secure_fields
            .iter()
            .map(|f| SecretsService::delete_write(&ctx(&owner, f)))
            .collect();
        self.store
            .delete_datasource(OrgId(ds.org_id), ds.id, &writes)
            .await
            .map_err(AppError::store("Failed to delete datasource"))?
            .ok_or_else(|| AppError::not_found(NOT_FOUND))?;
        Ok(ds)
    }

    /// Provisioning: creates or updates the datasource named `input.name` in `org`.
    pub async fn provision(&self, org: OrgId, input: DataSourceInput) -> Result<(), AppError> {
        let p = Principal::system_in(org);
        match self
            .store
            .datasource_by_name(org, input.name.trim())
            .await?
        {
            Some(old) => self.update(&p, old.id, input).await.map(drop),
            None => self.create(&p, input).await.map(drop),
        }
    }

    /// Provisioning: deletes the datasource named `name` in `org`; false when there is none.
    pub async fn unprovision(&self, org: OrgId, name: &str) -> Result<bool, AppError> {
        match self.store.datasource_by_name(org, name.trim()).await? {
            Some(ds) => self
                .delete(&Principal::system_in(org), ds)
                .await
                .map(|_| true),
            None => Ok(false),
        }
    }

    /// Finds a datasource in the caller's org for deletion by id, uid or name.
    pub async fn find(
        &self,
        p: &Principal,
        by: DataSourceRef<'_>,
    ) -> Result<DataSourceRecord, AppError> {
        let ds = self.lookup(p.org_id, by).await?;
        self.scoped(p, ds, Action::DatasourcesDelete)
    }

    /// `GET /api/datasources/id/:name`: the id of the org's datasource with this name, for
    /// holders of Grafana's `datasources.id:read` (every basic role has it).
    pub async fn id_by_name(&self, p: &Principal, name: &str) -> Result<u64, AppError> {
        let ds = self.store.datasource_by_name(p.org_id, name).await?;
        Ok(self.scoped(p, ds, Action::DatasourcesIdRead)?.id)
    }

    async fn lookup(
        &self,
        org: OrgId,
        by: DataSourceRef<'_>,
    ) -> Result<Option<DataSourceRecord>, AppError> {
        Ok(match by {
            DataSourceRef::Id(id) => self.store.datasource(org, id).await?,
            DataSourceRef::Uid(uid) => self.store.datasource_by_uid(org, uid).await?,
            DataSourceRef::Name(name) => self.store.datasource_by_name(org, name).await?,
        })
    }

    /// The decrypted secure fields (for the server's own use, never answered by the API).
    pub async fn secure_json_data(
        &self,
        ds: &DataSourceRecord,
    ) -> Result<BTreeMap<String, Zeroizing<String>>, AppError> {
        let owner = owner(ds);
        let mut out = BTreeMap::new();
        for f in &ds.secure_fields {
            if let Some(v) = self.secrets.read(&ctx(&owner, f)).await? {
                out.insert(f.clone(), v);
            }
        }
        Ok(out)
    }
}

/// How a datasource is named in a route.
#[derive(Debug, Clone, Copy)]
pub enum DataSourceRef<'a> {
    Id(u64),
    Uid(&'a str),
    Name(&'a str),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_as_grafana_validates_them() {
        for (ds_type, url) in [
            ("prometheus", "http://prom:9090"),
            ("prometheus", "prom:9090"),
            ("prometheus", "prom"),
            ("prometheus", "https://u:p%40ss@[::1]:9090/a/b?q=%zz#frag"),
            ("prometheus", "http://prom:/"),
            ("loki", "http://loki.example.org:3100/"),
            ("testdata", ""),
            ("prometheus", "a:b://c"),
        ] {
            assert!(validate_url(ds_type, url).is_ok(), "{ds_type} {url:?}");
        }
        for (ds_type, url) in [
            ("prometheus", ""),
            ("postgres", "  "),
            ("prometheus", "http://prom host:9090"),
            ("prometheus", "http://prom:90x0"),
            ("prometheus", "http:prom"),
            ("prometheus", "://prom"),
            ("prometheus", "1http://prom"),
            ("prometheus", "ht tp://prom"),
            ("prometheus", "http://[::1:9090"),
            ("prometheus", "http://[::1]x"),
            ("prometheus", "http://prom/%zz"),
            ("prometheus", "http://prom/%4"),
            ("prometheus", "http://prom/#%zz"),
            ("prometheus", "http://us er@prom"),
            ("prometheus", "http://prom\n"),
            ("testdata", "http://a b"),
        ] {
            let e = validate_url(ds_type, url).err();
            assert!(
                matches!(&e, Some(AppError::BadRequest(m)) if m == INVALID_URL),
                "{ds_type} {url:?}: {e:?}"
            );
        }
    }
}

//! HTTP only: one `#[OpenApi]` struct per resource group, the wire types, the security
//! scheme and the error mapping. Handlers translate; the services decide.

pub mod access_control;
pub mod admin_users;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod auth_tokens;
pub mod backup;
pub mod body;
pub mod dashboards;
pub mod datasources;
pub mod encryption;
pub mod error;
pub mod health;
pub mod json;
pub mod ldap;
pub mod licensing;
pub mod middleware;
pub mod observe;
pub mod orgs;
pub mod provisioning;
pub mod quotas;
pub mod routes;
pub mod service_accounts;
pub mod session;
pub mod settings;
pub mod users;
pub mod wire;

use poem_openapi::{OpenApiService, Tags};

/// Tags group the operations in Swagger UI and in generated clients.
#[derive(Tags)]
pub enum ApiTags {
    /// Grafana Admin API: global users.
    AdminUsers,
    /// Users.
    Users,
    /// Signing in and out with the session cookie.
    SignIn,
    /// Legacy org API keys.
    ApiKeys,
    /// Envelope encryption: data keys, rotation, re-encryption.
    Encryption,
    /// Datasources (secure fields encrypted).
    DataSources,
    /// Grafana Admin API: settings, stats and the usage report.
    AdminSettings,
    /// Grafana Enterprise's Licensing API, plus a typed status.
    Licensing,
    /// Provisioning reloads and status; legacy alerts and notification channels.
    Provisioning,
    /// Dashboards, folders and search.
    Dashboards,
    /// RBAC roles and app plugin settings.
    AccessControl,
    /// LDAP: reload, status, user lookup and sync.
    Ldap,
    /// Service accounts and their tokens.
    ServiceAccounts,
    /// Health and build information.
    Health,
    /// Organizations and their members.
    Orgs,
    /// Quotas of orgs and users (`[quota]`).
    Quotas,
}

/// Every API group, listed once: the type and the value come from the same list.
/// poem-openapi takes at most 16 groups in a tuple: the groups after `;` form a nested
/// tuple (itself one group).
macro_rules! apis {
    ($($api:path),* ; $($more:path),* $(,)?) => {
        pub type Apis = ($($api,)* ($($more,)*),);

        fn apis() -> Apis {
            ($($api,)* ($($more,)*),)
        }
    };
}

apis!(
    health::HealthApi,
    session::SessionApi,
    admin_users::AdminUsersApi,
    auth_tokens::AuthTokensApi,
    users::UsersApi,
    auth_tokens::OwnTokensApi,
    api_keys::ApiKeysApi,
    encryption::EncryptionApi,
    datasources::DataSourcesApi,
    settings::SettingsApi,
    licensing::LicensingApi,
    provisioning::ProvisioningApi,
    dashboards::DashboardsApi,
    access_control::AccessControlApi,
    ldap::LdapApi;
    service_accounts::ServiceAccountsApi,
    orgs::OrgsApi,
    quotas::QuotasApi,
    backup::BackupApi,
    audit::AuditApi,
);

/// The OpenAPI service: routes and document come from the same code.
pub fn service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(apis(), "tollgate", env!("CARGO_PKG_VERSION")).description(
        "Grafana's Admin HTTP API and Grafana Enterprise's Licensing HTTP API, served by a \
         single-binary appliance. Wire-compatible with Grafana: same paths, bodies, statuses \
         and RBAC actions.",
    )
}

/// The API's routes, built from the same operations as the document but without the
/// layers poem-openapi's own endpoint puts around them (a boxed endpoint, a response
/// mapping and a query-parsing step, each moving the request into a future of its own, and
/// a per-path method router boxed once more): [`middleware::Front`] parses the query and
/// calls this router directly, and [`Methods`] picks the operation.
pub fn router() -> poem::Route {
    use poem_openapi::OpenApi;
    let mut table = std::collections::HashMap::new();
    apis().add_routes(&mut table);
    table
        .into_iter()
        .fold(poem::Route::new(), |route, (path, methods)| {
            route.at(
                path,
                Methods {
                    methods: methods.into_iter().collect(),
                },
            )
        })
}

/// The operations of one path by method, as poem's `RouteMethod` picks them (a `HEAD`
/// without an operation of its own is its `GET` without the body; another method without
/// one is 405), without boxing each operation a second time.
struct Methods {
    methods: Vec<(poem::http::Method, poem::endpoint::BoxEndpoint<'static>)>,
}

impl poem::Endpoint for Methods {
    type Output = poem::Response;

    // Not an `async fn`: the operation's own (boxed) future is returned as it is, with no
    // level around it holding the request.
    fn call(
        &self,
        mut req: poem::Request,
    ) -> impl std::future::Future<Output = poem::Result<poem::Response>> + Send {
        use poem::endpoint::DynEndpoint;
        use poem::http::Method;
        let find = |m: &Method| self.methods.iter().find(|(k, _)| k == m).map(|(_, ep)| ep);
        if let Some(ep) = find(req.method()) {
            return DynEndpoint::call(&**ep, req);
        }
        match find(&Method::GET) {
            Some(ep) if req.method() == Method::HEAD => Box::pin(async move {
                req.set_method(Method::GET);
                let mut resp = DynEndpoint::call(&**ep, req).await?;
                resp.set_body(());
                Ok(resp)
            }),
            _ => Box::pin(std::future::ready(Err(
                poem::error::MethodNotAllowedError.into()
            ))),
        }
    }
}

/// [`spec_json`] made once per process and kept (every server of a test process shares
/// it; `/openapi.json` serves it without a copy).
pub fn spec_document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(spec_json)
}

/// Swagger UI at `/swagger/`. Its page embeds Swagger's script bundle and the document
/// (about 2 MB), so it is rendered on the first visit, not at start-up: an idle server
/// holds none of it. (poem-openapi's own endpoint renders it when the routes are built.)
pub fn swagger_ui() -> impl poem::Endpoint {
    static PAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    poem::Route::new().at(
        "/",
        poem::endpoint::make_sync(|_| {
            poem::web::Html(PAGE.get_or_init(|| service().swagger_ui_html()).as_str())
        }),
    )
}

/// The OpenAPI document as committed in `openapi/tollgate.json` and served at
/// `/openapi.json`: poem-openapi's, with optional properties marked nullable.
pub fn spec_json() -> String {
    let raw = service().spec();
    let mut s = match serde_json::from_str::<serde_json::Value>(&raw) {
        Ok(mut doc) => {
            mark_optional_nullable(&mut doc);
            serde_json::to_string_pretty(&doc).unwrap_or(raw)
        }
        Err(_) => raw,
    };
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

/// An optional property (`Option<T>`) reads `null` as absent, as Go's `encoding/json` does
/// for Grafana: the document says so (`nullable`), so clients and fuzzers agree with the
/// server. A `$ref` cannot carry siblings in OpenAPI 3.0, so it is wrapped in `allOf`.
fn mark_optional_nullable(doc: &mut serde_json::Value) {
    use serde_json::{json, Value};
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for schema in schemas.values_mut() {
        let required: Vec<String> = schema["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) else {
            continue;
        };
        for (name, prop) in props.iter_mut() {
            if required.contains(name) {
                continue;
            }
            if let Some(r) = prop.get("$ref").cloned() {
                *prop = json!({ "allOf": [{ "$ref": r }], "nullable": true });
            } else if let Some(p) = prop.as_object_mut() {
                p.insert("nullable".into(), Value::Bool(true));
            }
        }
    }
}

//! `/api/licensing/*`: Grafana Enterprise's Licensing HTTP API, plus a typed status and the
//! air-gapped renewal request.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};

use crate::api::auth::Auth;
use crate::api::body::GfJson;
use crate::api::wire::{int, rfc3339};
use crate::api::ApiTags;
use crate::api_errors;
use crate::domain::license::{LicenseClaims, LicenseState, RenewRequest};
use crate::service::licensing::{LicenseStatus as Status, SourceView};
use crate::service::Services;

/// The license token's claims, as Grafana answers them (field names are the JWT claims).
#[derive(Object, Debug)]
pub struct Token {
    /// Token id.
    pub jti: String,
    /// Issuer.
    pub iss: String,
    /// The licensed URL (a glob matched against `root_url`).
    pub sub: String,
    /// Token issued at (Unix seconds).
    pub iat: i64,
    /// Token expiry (Unix seconds).
    pub exp: i64,
    /// License start (Unix seconds).
    pub nbf: i64,
    /// License expiry (Unix seconds).
    pub lexp: i64,
    /// License id.
    pub lid: String,
    pub included_users: i64,
    pub included_admins: i64,
    pub included_viewers: i64,
    pub lic_exp_warn_days: i64,
    pub tok_exp_warn_days: i64,
    pub update_days: i64,
    pub prod: Vec<String>,
    pub company: String,
    pub slug: String,
    /// Grafana's status code: 1 valid, 3 invalid, 4 not found, 5 expired, 6 wrong instance.
    pub status: i64,
}

impl Token {
    fn new(c: LicenseClaims, state: LicenseState) -> Self {
        Self {
            jti: c.jti,
            iss: c.iss,
            sub: c.sub,
            iat: c.iat,
            exp: c.exp,
            nbf: c.nbf,
            lexp: c.lexp,
            lid: c.lid,
            included_users: c.included_users,
            included_admins: c.included_admins,
            included_viewers: c.included_viewers,
            lic_exp_warn_days: c.lic_exp_warn_days,
            tok_exp_warn_days: c.tok_exp_warn_days,
            update_days: c.update_days,
            prod: c.prod,
            company: c.company,
            slug: c.slug,
            status: state.grafana_code(),
        }
    }
}

/// A license token to store.
#[derive(Object, Debug)]
pub struct PostTokenForm {
    /// The signed license token (compact JWS).
    pub token: String,
}

/// Which instance's license to remove.
#[derive(Object, Debug)]
pub struct DeleteTokenForm {
    /// This server's `root_url`.
    pub instance: String,
}

/// An empty object.
#[derive(Object, Debug)]
pub struct Empty {}

/// A renewal asks nothing; Grafana's clients send `{}`.
#[derive(Object, Debug)]
pub struct RenewForm {}

/// Active users over the last 30 days, recounted now.
#[derive(Object, Debug)]
pub struct ActiveUserStats {
    pub active_admins_and_editors: i64,
    pub active_viewers: i64,
    pub active_users: i64,
}

/// One source of a license token and what it is worth.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct LicenseSource {
    /// `database`, `config` (`license_text`) or `file` (`license_path`).
    pub source: String,
    /// valid, invalid, expired, not-yet-valid or wrong-instance.
    pub state: String,
    /// Why the token is not valid; empty when it is.
    pub reason: String,
    #[oai(skip_serializing_if_is_none)]
    pub license_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub token_issued_at: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub license_expires_at: Option<String>,
}

/// An expiry and how far away it is.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct Expiry {
    /// RFC 3339.
    pub at: String,
    /// Whole days left (negative once passed).
    pub days_left: i64,
    /// Within the token's warning window (`lic_exp_warn_days` / `tok_exp_warn_days`).
    pub warning: bool,
}

/// Licensed versus used seats (users by their highest org role).
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct SeatUsage {
    /// 0 when the license does not limit it.
    pub included_users: i64,
    pub included_admins: i64,
    pub included_viewers: i64,
    pub users: i64,
    pub admins_and_editors: i64,
    pub viewers: i64,
    pub over_limit: bool,
}

/// A renewal attempt.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct RenewalAttempt {
    /// RFC 3339.
    pub at: String,
    /// `manual` or `automatic`.
    pub trigger: String,
    pub ok: bool,
    /// Why it failed; empty when it worked.
    pub error: String,
}

/// The license in effect, why it is (not) valid, and what to do about it.
#[derive(Object, Debug)]
#[oai(rename_all = "camelCase")]
pub struct LicenseStatus {
    /// valid, missing, invalid, expired, not-yet-valid or wrong-instance.
    pub state: String,
    pub reason: String,
    /// The source in effect: database, config, file; `none` when there is no token.
    pub source: String,
    /// Every source that holds a token, in precedence order (the first one is in effect).
    pub sources: Vec<LicenseSource>,
    #[oai(skip_serializing_if_is_none)]
    pub license_id: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub company: Option<String>,
    /// The licensed URL and this server's `root_url`.
    #[oai(skip_serializing_if_is_none)]
    pub subject: Option<String>,
    pub instance: String,
    #[oai(skip_serializing_if_is_none)]
    pub license_expiry: Option<Expiry>,
    #[oai(skip_serializing_if_is_none)]
    pub token_expiry: Option<Expiry>,
    pub seats: SeatUsage,
    /// Automatic renewal is on (`auto_refresh_license` and a `license_url`).
    pub auto_refresh: bool,
    pub license_url: String,
    #[oai(skip_serializing_if_is_none)]
    pub next_renewal_at: Option<String>,
    #[oai(skip_serializing_if_is_none)]
    pub last_renewal: Option<RenewalAttempt>,
}

/// What a renewal sends to the issuer; save it as a file to renew an air-gapped server
/// with `tollgate license renew --request`.
#[derive(Object, Debug)]
pub struct RenewRequestDto {
    pub token: String,
    pub instance: String,
    pub requested_at: i64,
    pub stats: RenewStatsDto,
}

#[derive(Object, Debug)]
pub struct RenewStatsDto {
    pub users: i64,
    pub admins_and_editors: i64,
    pub viewers: i64,
}

/// `202 {}`.
#[derive(ApiResponse, Debug)]
pub enum Accepted {
    /// The database token is removed (or there was none).
    #[oai(status = 202)]
    Accepted(Json<Empty>),
}

api_errors!(
    /// Errors of the license check.
    CheckError {
        401 => Unauthorized: "No or invalid credentials.",
    }
);

api_errors!(
    /// Errors of reading the license.
    ReadError {
        400 => BadRequest: "The token in effect cannot be decoded (the reason says why).",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `licensing:read`.",
        404 => NotFound: "No license token in any source.",
    }
);

api_errors!(
    /// Errors of reading license statistics.
    StatsError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `licensing:read`.",
    }
);

api_errors!(
    /// Errors of storing a license token.
    PostTokenError {
        400 => BadRequest: "Not JSON, no token, or the token is not valid for this server (the message gives the reason); nothing is stored.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `licensing:write`, or the request is cross-origin.",
        413 => PayloadTooLarge: "The body is too large.",
    }
);

api_errors!(
    /// Errors of renewing the license token.
    RenewError {
        400 => BadRequest: "Not JSON, or no issuer configured (`[enterprise] license_url`).",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `licensing:write`, or the request is cross-origin.",
        404 => NotFound: "No license token to renew.",
        413 => PayloadTooLarge: "The body is too large.",
        502 => BadGateway: "The issuer is unreachable, refused, or answered a token that is not valid here; the current token is kept.",
    }
);

api_errors!(
    /// Errors of removing the license token.
    DeleteTokenError {
        400 => BadRequest: "Not JSON or no instance.",
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `licensing:delete`, or the request is cross-origin.",
        413 => PayloadTooLarge: "The body is too large.",
        422 => Unprocessable: "incorrect instance name provided (not this server's root_url).",
    }
);

api_errors!(
    /// Errors of building the renewal request.
    RenewRequestError {
        401 => Unauthorized: "No or invalid credentials.",
        403 => Forbidden: "The caller lacks `licensing:write`.",
        404 => NotFound: "No license token to renew.",
    }
);

fn source_dto(v: &SourceView) -> LicenseSource {
    let c = v.claims.as_ref();
    LicenseSource {
        source: v.source.as_str().into(),
        state: v.state.as_str().into(),
        reason: v.reason.clone(),
        license_id: c.map(|c| c.lid.clone()),
        token_issued_at: c.map(|c| rfc3339(c.iat)),
        license_expires_at: c.filter(|c| c.lexp != 0).map(|c| rfc3339(c.lexp)),
    }
}

fn expiry(at: i64, now: i64, warn_days: i64) -> Expiry {
    let days_left = (at - now).div_euclid(86_400);
    Expiry {
        at: rfc3339(at),
        days_left,
        warning: days_left < warn_days,
    }
}

fn status_dto(s: Status) -> LicenseStatus {
    let eff = s.evaluation.effective.as_ref();
    let claims = eff.and_then(|e| e.claims.as_ref());
    LicenseStatus {
        state: s.evaluation.state().as_str().into(),
        reason: eff.map(|e| e.reason.clone()).unwrap_or_else(|| {
            "no license token: upload one (POST /api/licensing/token), set [enterprise] \
             license_text, or place it at license_path"
                .into()
        }),
        source: eff.map_or("none", |e| e.source.as_str()).into(),
        sources: s.evaluation.sources.iter().map(source_dto).collect(),
        license_id: claims.map(|c| c.lid.clone()),
        company: claims.map(|c| c.company.clone()),
        subject: claims.map(|c| c.sub.clone()),
        instance: s.instance.clone(),
        license_expiry: claims
            .filter(|c| c.lexp != 0)
            .map(|c| expiry(c.lexp, s.now, c.lic_exp_warn_days)),
        token_expiry: claims.map(|c| expiry(c.exp, s.now, c.tok_exp_warn_days)),
        seats: SeatUsage {
            included_users: s.seats.included_users,
            included_admins: s.seats.included_admins,
            included_viewers: s.seats.included_viewers,
            users: int(s.seats.users),
            admins_and_editors: int(s.seats.admins_and_editors),
            viewers: int(s.seats.viewers),
            over_limit: s.seats.over_limit,
        },
        auto_refresh: s.auto_refresh,
        license_url: s.license_url,
        next_renewal_at: s.next_renewal_at.map(rfc3339),
        last_renewal: s.last_renewal.map(|r| RenewalAttempt {
            at: rfc3339(r.at),
            trigger: r.trigger,
            ok: r.ok,
            error: r.error,
        }),
    }
}

fn renew_request_dto(r: RenewRequest) -> RenewRequestDto {
    RenewRequestDto {
        token: r.token,
        instance: r.instance,
        requested_at: r.requested_at,
        stats: RenewStatsDto {
            users: int(r.stats.users),
            admins_and_editors: int(r.stats.admins_and_editors),
            viewers: int(r.stats.viewers),
        },
    }
}

pub struct LicensingApi;

#[OpenApi(tag = "ApiTags::Licensing")]
impl LicensingApi {
    /// Whether a valid license is in effect: a bare `true` or `false`. Any authenticated
    /// caller, API keys included.
    #[oai(
        path = "/api/licensing/check",
        method = "get",
        operation_id = "getStatus"
    )]
    async fn check(
        &self,
        _auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<bool>, CheckError> {
        Ok(Json(services.licensing.check().await?))
    }

    /// The claims of the token in effect (`licensing:read`).
    #[oai(
        path = "/api/licensing/token",
        method = "get",
        operation_id = "getLicenseToken"
    )]
    async fn get_token(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<Token>, ReadError> {
        let (claims, state) = services.licensing.token(&auth.0).await?;
        Ok(Json(Token::new(claims, state)))
    }

    /// Store a license token in the database (`licensing:write`). It must verify against
    /// `[enterprise] license_issuer_keys` and be valid for this `root_url` now.
    #[oai(
        path = "/api/licensing/token",
        method = "post",
        operation_id = "postLicenseToken"
    )]
    async fn post_token(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<PostTokenForm>,
    ) -> Result<Json<Token>, PostTokenError> {
        let claims = services.licensing.upload(&auth.0, &body.0.token).await?;
        Ok(Json(Token::new(claims, LicenseState::Valid)))
    }

    /// Ask the issuer (`[enterprise] license_url`) for a fresh token now
    /// (`licensing:write`). On failure the current token stays in effect.
    #[oai(
        path = "/api/licensing/token/renew",
        method = "post",
        operation_id = "postRenewLicenseToken"
    )]
    async fn renew(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        _body: GfJson<RenewForm>,
    ) -> Result<Json<Token>, RenewError> {
        let claims = services.licensing.renew(&auth.0).await?;
        Ok(Json(Token::new(claims, LicenseState::Valid)))
    }

    /// Remove the license token from the database (`licensing:delete`); the file or
    /// `license_text` then applies. 202 whether or not there was one.
    #[oai(
        path = "/api/licensing/token",
        method = "delete",
        operation_id = "deleteLicenseToken"
    )]
    async fn delete_token(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
        body: GfJson<DeleteTokenForm>,
    ) -> Result<Accepted, DeleteTokenError> {
        services.licensing.remove(&auth.0, &body.0.instance).await?;
        Ok(Accepted::Accepted(Json(Empty {})))
    }

    /// Active users (30 days) by role, recounted now (`licensing:read`).
    #[oai(
        path = "/api/licensing/refresh-stats",
        method = "get",
        operation_id = "refreshLicenseStats"
    )]
    async fn refresh_stats(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<ActiveUserStats>, StatsError> {
        let s = services.licensing.refresh_stats(&auth.0).await?;
        Ok(Json(ActiveUserStats {
            active_admins_and_editors: int(s.active_admins_and_editors),
            active_viewers: int(s.active_viewers),
            active_users: int(s.active_users),
        }))
    }

    /// Beyond Grafana: the license in effect, why it is or is not valid, which source it
    /// comes from, expiries with warnings, seats and the last renewal (`licensing:read`).
    #[oai(
        path = "/api/licensing/status",
        method = "get",
        operation_id = "getLicenseStatus"
    )]
    async fn status(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<LicenseStatus>, StatsError> {
        Ok(Json(status_dto(services.licensing.status(&auth.0).await?)))
    }

    /// Beyond Grafana: the renewal request this server would send its issuer, to carry as a
    /// file to an air-gapped issuer (`tollgate license renew --request FILE`) (`licensing:write`).
    #[oai(
        path = "/api/licensing/renew-request",
        method = "get",
        operation_id = "getLicenseRenewRequest"
    )]
    async fn renew_request(
        &self,
        auth: Auth,
        services: Data<&Arc<Services>>,
    ) -> Result<Json<RenewRequestDto>, RenewRequestError> {
        Ok(Json(renew_request_dto(
            services.licensing.renew_request(&auth.0).await?,
        )))
    }
}

//! First start: the default org, the initial admin and the secret key, safer than
//! Grafana's admin/admin. Without `admin_password` the admin gets a random password written
//! to `<data>/initial-admin-password` (mode 0600); without `secret_key` a random key is
//! generated into `<data>/secret.key` (0600). Neither value is ever logged.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::crypto::random;
use crate::domain::{OrgId, UserId};
use crate::error::AppError;
use crate::service::users::NewUser;
use crate::service::Services;

pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";
pub const SECRET_KEY_FILE: &str = "secret.key";

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// The configured `secret_key`, or the generated one from `<data>/secret.key`.
pub fn secret_key(settings: &crate::config::Settings) -> Result<String, AppError> {
    if let Some(k) = &settings.secret_key {
        return Ok(k.clone());
    }
    let path = settings.data_path.join(SECRET_KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(k) if !k.trim().is_empty() => return Ok(k.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(AppError::internal("cannot read secret key", e)),
    }
    let key = random::hex(&random::bytes::<32>());
    write_private(&path, key.as_bytes())
        .map_err(|e| AppError::internal("cannot write secret key", e))?;
    tracing::warn!(
        path = %path.display(),
        "generated a random secret_key; move it out of the data folder and set [security] secret_key"
    );
    Ok(key)
}

/// Creates the default org and, on an empty database, the initial admin.
pub async fn first_start(services: &Services) -> Result<(), AppError> {
    let s = &services.settings;
    services
        .store
        .ensure_org(OrgId(1), "Main Org.", services.clock.now())
        .await?;
    if s.disable_initial_admin_creation || services.store.counts().await?.users > 0 {
        return Ok(());
    }
    let (password, generated) = match &s.admin_password {
        Some(p) => (p.clone(), false),
        None => (random::password(), true),
    };
    let path: PathBuf = s.data_path.join(INITIAL_PASSWORD_FILE);
    if generated {
        write_private(&path, format!("{password}\n").as_bytes())
            .map_err(|e| AppError::internal("cannot write the initial admin password", e))?;
    }
    let created = services
        .users
        .create_unchecked(
            NewUser {
                name: String::new(),
                email: s.admin_email.clone(),
                login: s.admin_user.clone(),
                password,
                org_id: Some(1),
            },
            true,
        )
        .await;
    let admin = match created {
        Ok(a) => a,
        // Another node sharing the database created it first.
        Err(AppError::PreconditionFailed(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if generated {
        tracing::warn!(
            login = %admin.login,
            path = %path.display(),
            "created the initial admin with a random password; read it from the file and change it"
        );
    } else {
        tracing::info!(login = %admin.login, "created the initial admin from [security] admin_password");
    }
    Ok(())
}

/// `tollgate admin reset-admin-password`: the admin is `[security] admin_user`, else user 1.
/// What `tollgate admin reset-admin-password` did.
pub struct ResetAdmin {
    pub login: String,
    /// The account was disabled and is enabled again.
    pub was_disabled: bool,
}

/// Sets the admin's password and enables the account if it was disabled.
pub async fn reset_admin_password(
    services: &Services,
    password: &str,
) -> Result<ResetAdmin, AppError> {
    let s = &services.settings;
    let admin = match services.store.user_by_login(&s.admin_user).await? {
        Some(u) => u,
        None => services
            .store
            .user(UserId(1))
            .await?
            .map(std::sync::Arc::unwrap_or_clone)
            .ok_or_else(|| AppError::not_found("no admin user found"))?,
    };
    services
        .users
        .set_password(
            &crate::domain::Principal::system(),
            &admin.id.to_string(),
            password,
        )
        .await?;
    // A locked-out operator's way back: the account signs in again.
    if admin.is_disabled {
        services
            .store
            .set_disabled(admin.user_id(), false, services.clock.now())
            .await?;
    }
    Ok(ResetAdmin {
        login: admin.login,
        was_disabled: admin.is_disabled,
    })
}

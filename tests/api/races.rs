//! Concurrent writes to the same user or role, through real HTTP, at the DEFAULT password
//! hash cost (600,000 PBKDF2 iterations), so a write that hashes is slow and another write
//! can land while it runs.
//!
//! Every test runs many rounds and asserts, per round, that the final state (and each
//! answer) is one that SOME serial order of the acknowledged (2xx) requests could
//! produce. A refused request (4xx/5xx) counts as not having happened. Failures are
//! collected over all rounds and reported together, one line per round and rule, so a run
//! says how often each race is lost, not only that it was lost once.
//!
//! Why these tests are expected to FAIL until the store fix lands:
//! - `UserService::set_password`, `set_disabled` and the hash upgrade in
//!   `AuthService::verify_password` read the whole user row, do their work (two of them a
//!   600k-iteration hash), then write the whole row back, erasing whatever was written in
//!   between (tests 1 to 3).
//! - Role assignments are held on the role row (`RoleRecord::user_ids`) and written back
//!   whole the same way: an assignment that read the role just before a delete puts it
//!   back, and parallel assignments of one role erase each other (test 5, and the extra
//!   test after test 4).
//!
//! Two more defects show up in the same runs and are NOT fixed by making the row writes
//! atomic alone; the messages name them separately:
//! - a sign-in that verified the password before a reset or a disable creates its session
//!   after that reset or disable revoked the user's sessions, so the session survives
//!   (tests 2 and 3);
//! - between a role delete's store write and the catalog reinstall, an assignment of the
//!   deleted custom role answers 400 "fixed and basic roles are read-only" instead of 404
//!   (test 5).
//!
//! Hashing at 600k iterations is only affordable because `Cargo.toml` optimises `ring` in
//! the dev/test profile (about 0.2 s a hash instead of about 3 s). The runtime is
//! multi-threaded: the server's handlers really run in parallel, as in production.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{send, session_token, TestApp, CHROME_UA};

/// The server's own default (`conf/defaults.ini`); the harness lowers it to 1,000.
const DEFAULT_COST: (&str, &str, &str) = ("security", "password_hash_iterations", "600000");
/// Rounds per race test (the brief asks for at least 30).
const ROUNDS: usize = 30;
/// How long the second request of a pair waits: long enough for the first to have read
/// the row and started hashing, far shorter than a 600k-iteration hash.
const LAG: Duration = Duration::from_millis(15);
/// The password the weak-phase users are created with.
const OLD_PW: &str = "old-weak-pw-1";

fn acked(status: u16) -> bool {
    (200..300).contains(&status)
}

/// One admin request first: the admin's Basic credentials are verified once (a full hash
/// at the server's cost) and then cached, so later admin calls in a race are cheap and do
/// not skew the timing.
async fn warm_admin(app: &TestApp) {
    let (s, v) = send(app.admin(Method::GET, "/api/user")).await;
    assert_eq!(s, 200, "admin signs in: {v}");
}

/// `n` users created while the server hashes at the test cost (1,000 iterations), then
/// the same data folder served at the default cost: every user's stored hash is weaker
/// than the server asks, so their next successful sign-in upgrades (rewrites) it.
async fn weak_users(
    prefix: &str,
    n: usize,
    extra: &[(&str, &str, &str)],
) -> (TestApp, Vec<(u64, String)>) {
    let weak = TestApp::spawn().await;
    let mut users = Vec::with_capacity(n);
    for i in 0..n {
        let login = format!("{prefix}-{i}");
        users.push((weak.create_user(&login, OLD_PW).await, login));
    }
    let (dir, data) = weak.stop().await;
    let mut overrides = vec![DEFAULT_COST];
    overrides.extend_from_slice(extra);
    let mut app = TestApp::spawn_in(&data, &overrides).await;
    app.dir = dir;
    warm_admin(&app).await;
    (app, users)
}

async fn basic_ok(app: &TestApp, login: &str, password: &str) -> bool {
    send(app.as_user(Method::GET, "/api/user", login, password))
        .await
        .0
        == 200
}

async fn is_disabled(app: &TestApp, id: u64) -> bool {
    let (s, u) = send(app.admin(Method::GET, &format!("/api/users/{id}"))).await;
    assert_eq!(s, 200, "user {id}: {u}");
    u["isDisabled"].as_bool().expect("isDisabled")
}

async fn set_enabled(app: &TestApp, id: u64) {
    let (s, v) = send(app.admin(Method::POST, &format!("/api/admin/users/{id}/enable"))).await;
    assert_eq!(s, 200, "enable {id}: {v}");
}

/// Failures by round; the panic message says how many rounds broke which rule.
#[derive(Default)]
struct Verdicts {
    failures: Vec<String>,
    rounds: usize,
}

impl Verdicts {
    fn fail(&mut self, round: usize, what: String) {
        self.failures.push(format!("round {round}: {what}"));
    }

    fn finish(self, test: &str, started: Instant) {
        let broken: std::collections::BTreeSet<&str> = self
            .failures
            .iter()
            .filter_map(|f| f.split(':').next())
            .collect();
        eprintln!(
            "{test}: {} of {} rounds not serially explainable ({} violations) in {:.1?}",
            broken.len(),
            self.rounds,
            self.failures.len(),
            started.elapsed()
        );
        assert!(
            self.failures.is_empty(),
            "{test}: {} of {} rounds end in a state no serial order of the acknowledged \
             requests produces:\n{}",
            broken.len(),
            self.rounds,
            self.failures.join("\n")
        );
    }
}

// ----- 1. password change racing disable -----

/// `PUT /api/admin/users/:id/password` (slow: it hashes) with `POST .../disable` landing
/// during the hash. Both serial orders end with the user disabled AND the new password
/// stored (Grafana lets an admin set a disabled user's password, and disabling does not
/// touch the password). The new password is checked by enabling the user again through
/// the admin API and signing in with Basic auth; a stored hash verifies exactly one
/// password, so "the new one works" also means "the old one does not".
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_change_racing_disable_keeps_both() {
    let started = Instant::now();
    let app = TestApp::spawn_with(&[DEFAULT_COST]).await;
    warm_admin(&app).await;
    let login = "race-pw";
    let id = app.create_user(login, "initial-pw-0").await;
    let mut stored_pw = "initial-pw-0".to_string();
    let mut v = Verdicts::default();
    for round in 0..ROUNDS {
        v.rounds += 1;
        let new_pw = format!("changed-pw-{round}");
        let pw_req = app
            .admin(Method::PUT, &format!("/api/admin/users/{id}/password"))
            .json(&json!({"password": new_pw}));
        let disable_req = app.admin(Method::POST, &format!("/api/admin/users/{id}/disable"));
        let pw = tokio::spawn(send(pw_req));
        let disable = tokio::spawn(async move {
            tokio::time::sleep(LAG).await;
            send(disable_req).await
        });
        let (pw_status, pw_body) = pw.await.unwrap();
        let (disable_status, disable_body) = disable.await.unwrap();
        if !acked(pw_status) {
            v.fail(
                round,
                format!("password change refused: {pw_status} {pw_body}"),
            );
        }
        if !acked(disable_status) {
            v.fail(
                round,
                format!("disable refused: {disable_status} {disable_body}"),
            );
        }

        let disabled = is_disabled(&app, id).await;
        if acked(disable_status) && !disabled {
            v.fail(
                round,
                "disable was acknowledged but the user is enabled (lost update)".into(),
            );
        }
        // Enable again, then the password the serial orders agree on must sign in.
        set_enabled(&app, id).await;
        let expected = if acked(pw_status) {
            new_pw.clone()
        } else {
            stored_pw.clone()
        };
        if !basic_ok(&app, login, &expected).await {
            v.fail(
                round,
                format!(
                    "the acknowledged new password {expected:?} does not sign in (lost update)"
                ),
            );
        }
        if acked(pw_status) {
            stored_pw = new_pw;
        }
    }
    v.finish("password_change_racing_disable", started);
}

// ----- 2. hash upgrade on sign-in racing an admin password reset -----

/// A user whose stored hash is weaker than the server's cost signs in with the OLD
/// password (the server verifies it, then re-hashes it at 600k and writes the row), while
/// an admin resets the password. The reset is sent first; the sign-in a few ms later, so
/// it reads the row before the reset writes it and, hashing as long, writes after it.
///
/// Serial orders of the acknowledged requests:
/// - sign-in (200), then reset: the new password works, the old does not, and the
///   session the sign-in created was revoked by the reset (tollgate and Grafana revoke a
///   user's sessions when an admin sets the password).
/// - reset, then sign-in: the sign-in must fail (old password), so no session exists.
///
/// Either way: new password works, old does not, no live session from the sign-in.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hash_upgrade_on_sign_in_racing_password_reset() {
    let started = Instant::now();
    let (app, users) = weak_users("upgrade", ROUNDS, &[]).await;
    let mut v = Verdicts::default();
    for (round, (id, login)) in users.iter().enumerate() {
        v.rounds += 1;
        let new_pw = format!("reset-pw-{round}");
        let reset_req = app
            .admin(Method::PUT, &format!("/api/admin/users/{id}/password"))
            .json(&json!({"password": new_pw}));
        let reset = tokio::spawn(send(reset_req));
        let sign_in_req = app
            .req(Method::POST, "/login")
            .header("user-agent", CHROME_UA)
            .json(&json!({"user": login, "password": OLD_PW}));
        let signed = tokio::spawn(async move {
            tokio::time::sleep(LAG).await;
            let resp = sign_in_req.send().await.expect("login request");
            (resp.status().as_u16(), session_token(&resp))
        });
        let (reset_status, reset_body) = reset.await.unwrap();
        let (sign_in_status, token) = signed.await.unwrap();
        if !acked(reset_status) {
            v.fail(round, format!("reset refused: {reset_status} {reset_body}"));
            continue;
        }
        if let (true, Some(token)) = (acked(sign_in_status), token) {
            let (s, _) = send(app.with_session(Method::GET, "/api/user", &token)).await;
            if s == 200 {
                v.fail(
                    round,
                    "the sign-in's session outlived the acknowledged reset (it was created \
                     after the reset revoked the user's sessions)"
                        .into(),
                );
            }
        }
        if !basic_ok(&app, login, &new_pw).await {
            v.fail(
                round,
                format!(
                    "the acknowledged new password does not sign in (sign-in answered \
                     {sign_in_status}; the upgrade rewrote the old password over the reset)"
                ),
            );
        }
        if basic_ok(&app, login, OLD_PW).await {
            v.fail(
                round,
                "the old password still signs in after the reset".into(),
            );
        }
    }
    v.finish("hash_upgrade_racing_reset", started);
}

// ----- 3. sign-in racing disable -----

/// A sign-in (with a weak stored hash, so it upgrades the hash and writes the row) while
/// an admin disables the user a few ms later. Serial orders:
/// - sign-in (200), then disable: the user is disabled and the session revoked;
/// - disable, then sign-in: the sign-in fails ("User is disabled"), no session.
///
/// Either way the user ends disabled, and after an admin enables the user again the
/// sign-in's session (if any) stays revoked: enabling does not bring sessions back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_in_racing_disable_leaves_the_user_disabled() {
    let started = Instant::now();
    let (app, users) = weak_users("signin", ROUNDS, &[]).await;
    let mut v = Verdicts::default();
    for (round, (id, login)) in users.iter().enumerate() {
        v.rounds += 1;
        let sign_in_req = app
            .req(Method::POST, "/login")
            .header("user-agent", CHROME_UA)
            .json(&json!({"user": login, "password": OLD_PW}));
        let signed = tokio::spawn(async move {
            let resp = sign_in_req.send().await.expect("login request");
            (resp.status().as_u16(), session_token(&resp))
        });
        let disable_req = app.admin(Method::POST, &format!("/api/admin/users/{id}/disable"));
        let disable = tokio::spawn(async move {
            tokio::time::sleep(LAG).await;
            send(disable_req).await
        });
        let (sign_in_status, token) = signed.await.unwrap();
        let (disable_status, disable_body) = disable.await.unwrap();
        if !acked(disable_status) {
            v.fail(
                round,
                format!("disable refused: {disable_status} {disable_body}"),
            );
            continue;
        }
        if !is_disabled(&app, *id).await {
            v.fail(
                round,
                format!(
                    "disable was acknowledged but the user is enabled (sign-in answered \
                     {sign_in_status}; its hash upgrade wrote the stale row back)"
                ),
            );
        }
        set_enabled(&app, *id).await;
        if let (true, Some(token)) = (acked(sign_in_status), token) {
            let (s, _) = send(app.with_session(Method::GET, "/api/user", &token)).await;
            if s == 200 {
                v.fail(
                    round,
                    "the sign-in's session outlived the acknowledged disable (it was \
                     created after the disable revoked the user's sessions)"
                        .into(),
                );
            }
        }
    }
    v.finish("sign_in_racing_disable", started);
}

// ----- 4. parallel role assignments -----

async fn create_role(app: &TestApp, uid: &str) {
    let (s, v) = send(app.admin(Method::POST, "/api/access-control/roles").json(
        &json!({"uid": uid, "name": format!("custom:{uid}"), "global": true,
                          "permissions": []}),
    ))
    .await;
    assert_eq!(s, 200, "create role {uid}: {v}");
}

fn assign_req(app: &TestApp, user: u64, role: &str) -> reqwest::RequestBuilder {
    app.admin(
        Method::POST,
        &format!("/api/access-control/users/{user}/roles"),
    )
    .json(&json!({"roleUid": role, "global": true}))
}

fn unassign_req(app: &TestApp, user: u64, role: &str) -> reqwest::RequestBuilder {
    app.admin(
        Method::DELETE,
        &format!("/api/access-control/users/{user}/roles/{role}"),
    )
}

/// The uids of the custom roles `GET /api/access-control/users/:id/roles` lists.
async fn user_role_uids(app: &TestApp, user: u64) -> std::collections::BTreeSet<String> {
    let (s, roles) = send(app.admin(
        Method::GET,
        &format!("/api/access-control/users/{user}/roles"),
    ))
    .await;
    assert_eq!(s, 200, "roles of {user}: {roles}");
    roles
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| r["uid"].as_str().expect("uid").to_string())
        .collect()
}

/// Sends every request at once; returns the statuses in order.
async fn all_at_once(reqs: Vec<reqwest::RequestBuilder>) -> Vec<(u16, Value)> {
    let tasks: Vec<_> = reqs.into_iter().map(|r| tokio::spawn(send(r))).collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// 30 parallel `POST /api/access-control/users/:id/roles`, each a different custom role,
/// to the same user: assignments commute, so every serial order ends with all the
/// acknowledged ones present. Then the 30 removals in parallel: none may survive.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_assignments_of_different_roles_all_land() {
    let started = Instant::now();
    let app = TestApp::spawn_with(&[DEFAULT_COST]).await;
    warm_admin(&app).await;
    let user = app.create_user("many-roles", "many-roles-pw").await;
    let roles: Vec<String> = (0..30).map(|i| format!("par-role-{i:02}")).collect();
    for r in &roles {
        create_role(&app, r).await;
    }
    let mut v = Verdicts::default();
    for round in 0..ROUNDS {
        v.rounds += 1;
        let results = all_at_once(roles.iter().map(|r| assign_req(&app, user, r)).collect()).await;
        let acked_roles: std::collections::BTreeSet<String> = roles
            .iter()
            .zip(&results)
            .filter(|(_, (s, _))| acked(*s))
            .map(|(r, _)| r.clone())
            .collect();
        if acked_roles.len() != roles.len() {
            v.fail(
                round,
                format!("{} of 30 assignments refused", 30 - acked_roles.len()),
            );
        }
        let held = user_role_uids(&app, user).await;
        let lost: Vec<&String> = acked_roles.difference(&held).collect();
        if !lost.is_empty() {
            v.fail(round, format!("acknowledged assignments missing: {lost:?}"));
        }
        let results =
            all_at_once(roles.iter().map(|r| unassign_req(&app, user, r)).collect()).await;
        let removed: std::collections::BTreeSet<String> = roles
            .iter()
            .zip(&results)
            .filter(|(_, (s, _))| acked(*s))
            .map(|(r, _)| r.clone())
            .collect();
        let held = user_role_uids(&app, user).await;
        let kept: Vec<&String> = removed.intersection(&held).collect();
        if !kept.is_empty() {
            v.fail(
                round,
                format!("acknowledged removals still assigned: {kept:?}"),
            );
        }
        // Start the next round from nothing, whatever happened.
        for r in &held {
            send(unassign_req(&app, user, r)).await;
        }
    }
    v.finish("parallel_assignments_of_different_roles", started);
}

/// Beyond the brief: tollgate holds assignments on the ROLE row, so the conflicting case
/// is the same role assigned to many users at once. 30 users, one role, in parallel: all
/// acknowledged assignments must be visible. (Users are created in a weak-hash phase only
/// to keep the set-up short; the race runs at the default cost. 300 other roles are
/// provisioned, as in test 5, so the read-to-write window has a realistic width.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_assignments_of_one_role_to_many_users_all_land() {
    let started = Instant::now();
    let filler = filler_roles(300);
    let provisioning = filler.path().to_string_lossy().to_string();
    let (app, users) = weak_users(
        "one-role",
        30,
        &[("paths", "provisioning", provisioning.as_str())],
    )
    .await;
    let mut v = Verdicts::default();
    for round in 0..ROUNDS {
        v.rounds += 1;
        let role = format!("shared-role-{round}");
        create_role(&app, &role).await;
        let results = all_at_once(
            users
                .iter()
                .map(|(u, _)| assign_req(&app, *u, &role))
                .collect(),
        )
        .await;
        let mut lost = Vec::new();
        for ((u, login), (s, body)) in users.iter().zip(&results) {
            if !acked(*s) {
                v.fail(round, format!("assignment to {login} refused: {s} {body}"));
                continue;
            }
            if !user_role_uids(&app, *u).await.contains(&role) {
                lost.push(login.as_str());
            }
        }
        if !lost.is_empty() {
            v.fail(
                round,
                format!(
                    "{} of 30 acknowledged assignments of {role} missing (lost update on \
                     the role row): {lost:?}",
                    lost.len()
                ),
            );
        }
    }
    v.finish("parallel_assignments_of_one_role", started);
}

// ----- 5. role delete racing assignment -----

/// A provisioning folder with `n` custom roles of 10 permissions each, whose uids sort
/// after the raced roles (`doomed-*`): a deployment with a few hundred roles.
fn filler_roles(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("apiVersion: 1\nroles:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  - name: \"custom:filler:{i:04}\"\n    uid: zz-filler-{i:04}\n    version: 1\n    \
             global: true\n    permissions:\n"
        ));
        for p in 0..10 {
            yaml.push_str(&format!(
                "      - action: \"users:read\"\n        scope: \"global.users:id:{p}\"\n"
            ));
        }
    }
    let ac = dir.path().join("access-control");
    std::fs::create_dir_all(&ac).unwrap();
    std::fs::write(ac.join("filler.yaml"), yaml).unwrap();
    dir
}

/// `DELETE /api/access-control/roles/:uid?force=true` racing assignments of that role.
///
/// Grafana semantics (HTTP API docs, "Delete a custom role"): without `force` the delete
/// FAILS while the role is assigned; with `force=true` the role is deleted with all its
/// assignments. Assigning a role that does not exist answers 404 "Role not found".
/// tollgate ignores `force` and always deletes with the assignments (they live on the
/// role row); sending `force=true` makes both behaviours agree, so the test holds for
/// either implementation. Serial orders of the acknowledged requests:
/// - assign(s), then delete: the role and its assignments are gone;
/// - delete, then assign: the assign answers 404 (not acknowledged), the role is gone.
///
/// So when the delete is acknowledged the role must be gone (the role read answers 404,
/// the list does not show it) and no user lists it, whatever the assigns answered; and
/// each assign answers 200 or 404, the only answers a serial order gives. An acknowledged
/// assign "after" the delete cannot exist: in Grafana it finds no role.
///
/// In tollgate the window is only the time between the assign's read of the role (a scan
/// of the roles tree) and its write: no hash in between. To give it a realistic width the
/// store holds 300 other roles (provisioned) and 8 assigns race each delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn role_delete_racing_assignment_leaves_no_role() {
    let started = Instant::now();
    const ASSIGNERS: usize = 8;
    const DELETE_ROUNDS: usize = 60;
    let filler = filler_roles(300);
    let provisioning = filler.path().to_string_lossy().to_string();
    let app = TestApp::spawn_with(&[
        DEFAULT_COST,
        ("paths", "provisioning", provisioning.as_str()),
    ])
    .await;
    warm_admin(&app).await;
    let (s, v) = send(app.admin(Method::GET, "/api/access-control/roles/zz-filler-0299")).await;
    assert_eq!(s, 200, "the filler roles are provisioned: {v}");
    let mut users = Vec::new();
    for i in 0..ASSIGNERS {
        users.push(
            app.create_user(&format!("del-race-{i}"), "del-race-pw")
                .await,
        );
    }
    let mut v = Verdicts::default();
    for round in 0..DELETE_ROUNDS {
        v.rounds += 1;
        let role = format!("doomed-{round:03}");
        create_role(&app, &role).await;
        let delete_lag = Duration::from_millis((round % 2) as u64);
        let delete_req = app.admin(
            Method::DELETE,
            &format!("/api/access-control/roles/{role}?force=true"),
        );
        let delete = tokio::spawn(async move {
            tokio::time::sleep(delete_lag).await;
            send(delete_req).await
        });
        let assigns: Vec<_> = users
            .iter()
            .map(|u| tokio::spawn(send(assign_req(&app, *u, &role))))
            .collect();
        let (delete_status, delete_body) = delete.await.unwrap();
        let mut assign_answers = Vec::new();
        for a in assigns {
            assign_answers.push(a.await.unwrap());
        }
        let assign_statuses: Vec<u16> = assign_answers.iter().map(|(s, _)| *s).collect();
        for (s, body) in &assign_answers {
            if *s != 200 && *s != 404 {
                v.fail(
                    round,
                    format!("an assign answered {s} {body}: no serial order gives that"),
                );
            }
        }
        if !acked(delete_status) {
            v.fail(
                round,
                format!("delete refused: {delete_status} {delete_body}"),
            );
            continue;
        }
        let (s, body) =
            send(app.admin(Method::GET, &format!("/api/access-control/roles/{role}"))).await;
        if s != 404 {
            v.fail(
                round,
                format!(
                    "the deleted role still reads {s} {body} (assigns answered \
                     {assign_statuses:?})"
                ),
            );
        }
        let (_, list) = send(app.admin(Method::GET, "/api/access-control/roles")).await;
        if list
            .as_array()
            .is_some_and(|l| l.iter().any(|r| r["uid"] == role.as_str()))
        {
            v.fail(round, "the deleted role is still listed".into());
        }
        let mut holders = Vec::new();
        for u in &users {
            if user_role_uids(&app, *u).await.contains(&role) {
                holders.push(*u);
            }
        }
        if !holders.is_empty() {
            v.fail(
                round,
                format!(
                    "users {holders:?} still hold the deleted role (assigns answered \
                     {assign_statuses:?})"
                ),
            );
        }
    }
    v.finish("role_delete_racing_assignment", started);
}

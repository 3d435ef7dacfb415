//! Account changes with their audit entries: each change and its entry in one
//! transaction, and the user's sessions ended when what they may do changes.

use super::store;
use crate::audit::Actor;
use crate::auth::UserRole;
use crate::error::AppError;
use crate::state::AppState;
use crate::time::now_millis;

/// Creates an account with optional budgets (an existing email is refused).
pub async fn create(state: &AppState, actor: &Actor, email: &str, password: &str, role: UserRole, daily: Option<i64>, monthly: Option<i64>) -> Result<i64, AppError> {
    use crate::budget::store::Override;
    let id = crate::auth::service::create_user(&state.db, &state.passwords, email, password, role).await?;
    let mut tx = state.db.begin_write().await?;
    let email = store::find(&mut tx, id).await?.map(|(e, _, _)| e).unwrap_or_default();
    crate::audit::store::record(&mut tx, actor, now_millis(), &format!("user {email}"), "none", &format!("created ({})", role.as_str())).await?;
    tx.commit().await?;
    for (which, value) in [(Override::UserDaily, daily), (Override::UserMonthly, monthly)] {
        if value.is_some() {
            crate::budget::service::set_override(state, actor, which, id, value).await?;
        }
    }
    Ok(id)
}

/// What an admin changes about an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Role(UserRole),
    Active(bool),
    /// A new password, already hashed.
    Password(String),
}

/// Applies a change with its audit entry; ends the user's sessions when it changes what
/// they may do or how they sign in.
pub async fn change(state: &AppState, actor: &Actor, user_id: i64, change: Change) -> Result<(), AppError> {
    let mut tx = state.db.begin_write().await?;
    let Some((email, role, active)) = store::find(&mut tx, user_id).await? else {
        return Err(AppError::not_found("user"));
    };
    let (what, old, new, ends_sessions) = match &change {
        Change::Role(new_role) => {
            store::set_role(&mut tx, user_id, *new_role).await?;
            ("role", role.as_str().to_string(), new_role.as_str().to_string(), true)
        }
        Change::Active(now_active) => {
            store::set_active(&mut tx, user_id, *now_active).await?;
            let word = |a: bool| if a { "active" } else { "deactivated" }.to_string();
            ("status", word(active), word(*now_active), !now_active)
        }
        Change::Password(hash) => {
            store::set_password_hash(&mut tx, user_id, hash).await?;
            ("password", "—".to_string(), "reset".to_string(), true)
        }
    };
    crate::audit::store::record(&mut tx, actor, now_millis(), &format!("user {email}: {what}"), &old, &new).await?;
    tx.commit().await?;
    if ends_sessions {
        crate::auth::service::end_sessions(&state.db, user_id).await?;
    }
    Ok(())
}

/// Every account with its spend this month and the last day it used Claude.
pub async fn list(state: &AppState) -> Result<Vec<super::UserSummary>, AppError> {
    let mut users = super::store::list(&state.db).await?;
    let day = crate::time::local_day(crate::time::now_millis(), state.settings.time.tz());
    let spent = crate::usage::store::spend_of_period(&state.db, "user", &crate::usage::CounterKey::user_month(0, &day).period).await?;
    let mut last = crate::usage::store::last_use_days(&state.db).await?;
    for user in &mut users {
        user.spent_this_month_microusd = spent.get(&user.id).copied().unwrap_or(0);
        user.last_used_on = last.remove(&user.id);
    }
    Ok(users)
}

/// The daily and monthly budgets of an account without its own: the configured daily
/// budget and the monthly one in force (an admin may have changed it on /admin/limits).
pub async fn defaults(state: &AppState) -> Result<super::UserDefaults, AppError> {
    let mut conn = state.db.read().await?;
    let limits = crate::budget::service::limits_in_force(&mut conn, &state.settings.limits).await?;
    conn.ended_well();
    drop(conn);
    Ok(super::UserDefaults {
        daily_tokens: state.settings.budget.user_daily_tokens,
        monthly_microusd: crate::budget::service::micro(limits.user_monthly_usd),
    })
}

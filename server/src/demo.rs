//! Demo data for development: an admin, an analyst and a few realistic deals, so a
//! newcomer can sign in and look around at once. Never run unless `demo.seed` is on.

use app::auth::UserRole;
use app::auth::service::upsert_user;
use app::auth::store::find_user_by_email;
use app::db::Db;
use app::deals::DealInput;
use app::error::AppError;
use app::passwords::Passwords;

pub const ADMIN_EMAIL: &str = "admin@dealdesk.test";
pub const ADMIN_PASSWORD: &str = "admin-demo-pass";
pub const ANALYST_EMAIL: &str = "analyst@dealdesk.test";
pub const ANALYST_PASSWORD: &str = "analyst-demo-pass";

/// Creates what is missing; leaves existing accounts (and changed passwords) alone.
pub async fn seed(db: &Db, passwords: &Passwords) -> Result<(), AppError> {
    let mut analyst_id = None;
    for (email, password, role) in [
        (ADMIN_EMAIL, ADMIN_PASSWORD, UserRole::Admin),
        (ANALYST_EMAIL, ANALYST_PASSWORD, UserRole::Analyst),
    ] {
        let id = match find_user_by_email(db, email).await? {
            Some(user) => user.id,
            None => upsert_user(db, passwords, email, password, role).await?,
        };
        if role == UserRole::Analyst {
            analyst_id = Some(id);
        }
    }
    if app::deals::store::count(db).await? > 0 {
        return Ok(());
    }
    let owner = analyst_id.unwrap_or_default();
    for (name, address, kind, price, notes) in [
        (
            "Harbor Point Office Tower",
            "200 Harbor Point Blvd, Baltimore, MD 21231",
            "Office",
            "$86,500,000",
            "22-storey Class A tower, 412,000 SF, 84% leased. Anchor tenant (law firm, 31% of NRA) \
             rolls in 2028. In-place NOI $6.1M; seller guiding to a 7.0% cap.",
        ),
        (
            "Maple Grove Apartments",
            "1450 Maple Grove Dr, Austin, TX 78741",
            "Multifamily",
            "42.75M",
            "312 units built 2004, 95% occupied, average rent $1,540. Value-add: interior \
             renovations on 180 classic units at ~$14k/unit for a $175 premium.",
        ),
        (
            "Route 9 Logistics Center",
            "88 Commerce Way, Marlborough, MA 01752",
            "Industrial",
            "31,200,000",
            "Two buildings, 265,000 SF total, 32' clear height, single tenant (3PL) with 6.5 \
             years WALT and 3% annual bumps. Going-in cap 5.6%.",
        ),
    ] {
        let input = DealInput::parse(name, address, kind, price, notes)?;
        app::deals::store::create(db, owner, &input).await?;
    }
    Ok(())
}

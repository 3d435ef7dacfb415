//! Pages: what a route shows, composed from the features' views. The only place one
//! feature's view meets another's (the deal page puts the chat, report and comps tabs
//! beside the budget meters).

pub mod alerts;
pub mod audit;
pub mod deal;
pub mod deal_budgets;
pub mod deals;
pub mod limits;
pub mod my_usage;
pub mod prices;
pub mod routes;
pub mod shell;
pub mod split;
pub mod tokens;
pub mod users;

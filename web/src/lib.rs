//! The certification portal: vendors submit signed bundles, reviewers
//! approve them, everyone searches the published certifications.
//!
//! [`app`] builds the whole [`axum::Router`] from an [`AppState`] (tests call
//! it with `oneshot`, `certlab serve` binds it to a socket). HTML pages are
//! rendered with tera from `templates/` and work without JavaScript; the
//! JSON API lives under `/api/v1`. Everything the portal stores is in the
//! [`store::PortalStore`] and, content-addressed, under the data directory;
//! the lab dashboard ([`lab`]) shows the orchestrator's tables of the same
//! database.

mod api;
mod app;
pub mod auth;
pub mod error;
pub mod kabi;
pub mod lab;
mod metrics;
pub mod openapi;
mod pages;
pub mod ratelimit;
pub mod review;
pub mod store;
mod submit;
pub mod transparency;
mod views;

pub use app::{app, AppState, Config};
pub use error::WebError;
pub use store::{PortalStore, Role};

//! Hardware identification: raw evidence in, [`HardwareProfile`] out.
//!
//! `hwdb` is pure: it parses text it is given and never runs commands.

pub mod inventory;
pub mod profile;

pub use inventory::{Fact, Inventory, SysfsPciDevice};
pub use profile::*;
